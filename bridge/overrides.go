package bridge

// Where a setting's value comes from: a value stored at run time (the
// state file: /dummy.htm … store_settings=save, CSTA, the keypad) wins
// over the YAML file. That must never be silent: the status page shows
// both values, start-up and reload log the overrides, -check-config lists
// them, and the admin can drop an extension's stored values
// (DELETE /stored/{ext} on the admin listener).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/csta-bridge/csta-bridge/bridge/config"
)

// override is one stored setting next to the YAML's value for it.
type override struct {
	Name   string `json:"name"`
	Stored string `json:"stored"`
	YAML   string `json:"yaml"`
	InYAML bool   `json:"in_yaml"`
}

// overridesOf lists the stored settings, sorted, with what the YAML says.
func overridesOf(stored, yaml map[string]string) []override {
	out := make([]override, 0, len(stored))
	for _, name := range slices.Sorted(maps.Keys(stored)) {
		y, in := yaml[name]
		if secretSetting(name) {
			out = append(out, override{Name: name, Stored: "(hidden)", YAML: "(hidden)", InYAML: in})
			continue
		}
		out = append(out, override{Name: name, Stored: stored[name], YAML: y, InYAML: in})
	}
	return out
}

func (o override) String() string {
	if !o.InYAML {
		return o.Name + "=" + strconv.Quote(o.Stored) + " (not in YAML)"
	}
	return o.Name + "=" + strconv.Quote(o.Stored) + " (YAML: " + strconv.Quote(o.YAML) + ")"
}

// OverrideLines reads cfg's state file and describes, per extension, the
// stored settings that override the YAML: what -check-config prints. A
// missing state file has none; an unreadable one is an error.
func OverrideLines(cfg *config.Config) ([]string, error) {
	if cfg.StateFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var st stateFile
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w (the bridge ignores it and starts without stored settings)", cfg.StateFile, err)
	}
	yaml := map[string]map[string]string{}
	for _, e := range cfg.Extensions {
		yaml[e.Name] = e.Settings
	}
	var lines []string
	for _, ext := range slices.Sorted(maps.Keys(st.Extensions)) {
		if len(st.Extensions[ext]) == 0 {
			continue
		}
		y, known := yaml[ext]
		var parts []string
		for _, o := range overridesOf(st.Extensions[ext], y) {
			parts = append(parts, o.String())
		}
		suffix := ""
		if !known {
			suffix = " (extension not in the YAML)"
		}
		lines = append(lines, "extension "+ext+suffix+": state file overrides "+strings.Join(parts, ", "))
	}
	return lines, nil
}

// logOverrides says at Info which YAML settings the state file overrides.
func (a *App) logOverrides(cfg *config.Config) {
	a.stateMu.Lock()
	stored := make(map[string]map[string]string, len(a.stored))
	for e, s := range a.stored {
		stored[e] = maps.Clone(s)
	}
	a.stateMu.Unlock()
	for _, e := range cfg.Extensions {
		if len(stored[e.Name]) == 0 {
			continue
		}
		var parts []string
		for _, o := range overridesOf(stored[e.Name], e.Settings) {
			parts = append(parts, o.String())
		}
		a.log.Info("state file overrides YAML settings; DELETE /stored/"+e.Name+" on the admin listener drops them",
			"ext", e.Name, "path", cfg.StateFile, "settings", strings.Join(parts, ", "))
	}
}

// dropStored forgets ext's stored settings (state file and run time): the
// phone is back to its YAML settings, and the features it loses fire their
// action URLs.
func (a *App) dropStored(ext string) (int, error) {
	path := a.cfg.Load().StateFile
	a.stateMu.Lock()
	n := len(a.stored[ext])
	if n > 0 && path != "" {
		next := make(map[string]map[string]string, len(a.stored))
		for e, s := range a.stored {
			if e != ext {
				next[e] = maps.Clone(s)
			}
		}
		if err := a.writeStored(path, next); err != nil {
			a.stateMu.Unlock()
			return 0, err
		}
		a.stored = next
	}
	a.stateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	err := a.sb.do(ctx, func() { a.sb.replaceSettings(ext, map[string]string{}) })
	return n, err
}

// storedHandler serves GET /stored (every extension's overrides as JSON)
// and DELETE /stored/{ext}.
func (a *App) storedHandler(w http.ResponseWriter, r *http.Request) {
	ext := r.PathValue("ext")
	if r.Method == http.MethodDelete {
		if ext == "" {
			http.Error(w, "name the extension: DELETE /stored/{ext}", http.StatusBadRequest)
			return
		}
		n, err := a.dropStored(ext)
		if err != nil {
			a.log.Error("dropping stored settings failed", "ext", ext, "err", err)
			http.Error(w, "dropping stored settings failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		a.log.Info("stored settings dropped by the admin; the YAML settings apply", "ext", ext, "settings", n)
		fmt.Fprintf(w, "extension %s: %d stored settings dropped\n", ext, n)
		return
	}
	out := map[string][]override{}
	for _, e := range a.cfg.Load().Extensions {
		if s := a.storedFor(e.Name); len(s) > 0 {
			out[e.Name] = overridesOf(s, e.Settings)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// featureView is a phone's features as the status page shows them.
type featureView struct {
	DND       bool
	Forward   string // "all → 1002", "" when off
	Overrides []override
}

func viewFeatures(p *phone, stored map[string]string) featureView {
	f := p.features()
	v := featureView{DND: f.DND, Overrides: overridesOf(stored, p.cfg.Settings)}
	if f.redirecting() {
		v.Forward = f.Event + " → " + f.target(f.Event)
		if f.Event == "time" {
			v.Forward += " after " + f.Time.String()
		}
	}
	return v
}

// divertList is the last refused and forwarded calls, newest first.
func (a *App) divertList() []divertRecord {
	l := a.sb.diverted.list()
	slices.Reverse(l)
	return l
}
