package pbxtest

import (
	"fmt"
	"net/http"
	"net/url"
)

// Web requests a page of the phone's web interface on the shared listener
// (/{ext}/command.htm?…, /{ext}/dummy.htm?…) as a CTI client does; it must
// answer 200.
func (c *BridgeClient) Web(ext, pathAndQuery string) {
	c.t.Helper()
	resp, err := c.http.Get("http://" + c.shared + "/" + ext + "/" + pathAndQuery)
	if err != nil {
		c.t.Fatalf("%s: %v", pathAndQuery, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: status %d", pathAndQuery, resp.StatusCode)
	}
}

type webStep struct {
	who  Role
	what string // "key" or "settings"
	arg  string
}

// Key presses a key of r's phone (/command.htm?key=KEY).
func Key(r Role, key string) Step { return webStep{r, "key", key} }

// Setting writes settings of r's phone at run time and stores them
// (/dummy.htm?settings=save&NAME=VALUE…&store_settings=save); {A}, {B},
// {C} in the values are the roles' extension numbers.
func Setting(r Role, nameValues ...string) Step {
	q := ""
	for _, nv := range nameValues {
		q += "&" + nv
	}
	return webStep{r, "settings", q}
}

func (s webStep) String() string { return fmt.Sprintf("%s %s %s", s.who, s.what, s.arg) }

func (s webStep) do(p *play) {
	p.t.Helper()
	ext := p.rig.Ext(s.who)
	if s.what == "key" {
		p.rig.Bridge().Web(ext, "command.htm?key="+url.QueryEscape(s.arg))
		return
	}
	p.rig.Bridge().Web(ext, "dummy.htm?settings=save"+p.expand(s.arg)+"&store_settings=save")
}
