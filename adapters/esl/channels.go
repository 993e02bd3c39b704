package esl

import (
	"encoding/json"
	"fmt"
	"strings"
)

// channelRow is one row of `show channels as json` (FreeSWITCH 1.10 column
// names, see testdata/h_show_channels.filtered.rx.raw).
type channelRow struct {
	UUID       string `json:"uuid"`
	Direction  string `json:"direction"`
	Name       string `json:"name"`
	PresenceID string `json:"presence_id"`
	CallState  string `json:"callstate"`
}

// parseShowChannels decodes `show channels as json`. An empty list is
// {"row_count": 0} without a rows key.
func parseShowChannels(body string) ([]channelRow, error) {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "-") {
		return nil, checkReply("show channels", body)
	}
	var v struct {
		RowCount *int         `json:"row_count"`
		Rows     []channelRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("esl: show channels: %w", err)
	}
	if v.RowCount == nil {
		return nil, fmt.Errorf("esl: show channels: no row_count in reply")
	}
	if *v.RowCount != len(v.Rows) {
		return nil, fmt.Errorf("esl: show channels: row_count %d but %d rows", *v.RowCount, len(v.Rows))
	}
	rows := v.Rows[:0]
	for _, r := range v.Rows {
		if r.UUID != "" {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// parseDump decodes `uuid_dump <uuid> json`, a flat object of channel
// headers and variables; a few variables are arrays (their first element
// is used).
func parseDump(body string) (chEvent, error) {
	body = strings.TrimSpace(body)
	if strings.HasPrefix(body, "-") {
		return chEvent{}, checkReply("uuid_dump", body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		return chEvent{}, fmt.Errorf("esl: uuid_dump: %w", err)
	}
	m := make(map[string]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) != nil {
			var arr []string
			if json.Unmarshal(v, &arr) != nil || len(arr) == 0 {
				continue
			}
			s = arr[0]
		}
		m[k] = s
		keys = append(keys, k)
	}
	e := decodeFields(func(name string) string { return m[name] }, keys)
	if e.UUID == "" {
		return chEvent{}, fmt.Errorf("esl: uuid_dump: no Unique-ID in reply")
	}
	return e, nil
}
