package actionurl

import (
	"net/url"
	"strings"
	"testing"
)

var testVars = map[string]string{
	"local":             "sip:1001@pbx",
	"remote":            "sip:+4930123@pbx",
	"csta_id":           "-18",
	"call-id":           "abc@10.0.0.1",
	"display_remote":    "Müller, Hans",
	"mac":               "000413AABBCC",
	"phone_ip":          "10.0.0.5",
	"active_user":       "1001",
	"sip_header(X-Foo)": "bar baz",
	"special":           ":@ &+#%?/",
	"empty":             "",
}

func mapLookup(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name, tmpl, want string
	}{
		{"snom example", "http://crm/in.php?Caller=$remote&Callee=$local&csta_id=$csta_id",
			"http://crm/in.php?Caller=sip%3A%2B4930123%40pbx&Callee=sip%3A1001%40pbx&csta_id=-18"},
		{"fragment", "http://x/t.xml#k=$csta_id&m=$mac", "http://x/t.xml#k=-18&m=000413AABBCC"},
		{"query and fragment", "http://x/?a=$active_user#b=$active_user", "http://x/?a=1001#b=1001"},
		{"path with &", "http://x/$mac&/settings.xml", "http://x/000413AABBCC/settings.xml"},
		{"path without & stays literal", "http://x/$mac/settings.xml", "http://x/$mac/settings.xml"},
		{"path value is encoded", "http://x/$special&/y", "http://x/%3A%40%20%26%2B%23%25%3F%2F/y"},
		{"path unknown with &", "http://x/$nope&/y", "http://x//y"},
		{"path hyphen name", "http://x/$call-id&.xml", "http://x/abc%4010.0.0.1.xml"},
		{"path sip_header", "http://x/$sip_header(X-Foo)&/y", "http://x/bar%20baz/y"},
		{"path lone dollar", "http://x/a$/b$", "http://x/a$/b$"},
		{"path $$", "http://x/$$mac&/y", "http://x/$mac&/y"},
		{"hyphen name", "http://x/?id=$call-id", "http://x/?id=abc%4010.0.0.1"},
		{"hyphen not part of known name", "http://x/?r=$remote-x", "http://x/?r=sip%3A%2B4930123%40pbx-x"},
		{"unknown is empty", "http://x/?a=$nope&b=1", "http://x/?a=&b=1"},
		{"unknown ends at hyphen", "http://x/?a=$nope-x", "http://x/?a=-x"},
		{"no prefix match without hyphen", "http://x/?ip=$local_ip", "http://x/?ip="},
		{"empty value", "http://x/?e=$empty&m=$mac", "http://x/?e=&m=000413AABBCC"},
		{"sip_header", "http://x/?h=$sip_header(X-Foo)&n=1", "http://x/?h=bar%20baz&n=1"},
		{"unknown sip_header", "http://x/?h=$sip_header(X-Bar)&n=1", "http://x/?h=&n=1"},
		{"malformed sip_header", "http://x/?h=$sip_header(X Foo)", "http://x/?h=(X%20Foo)"},
		{"unclosed sip_header", "http://x/?h=$sip_header(X-Foo", "http://x/?h=(X-Foo"},
		{"$$ is a dollar", "http://x/?price=$$5&m=$$mac", "http://x/?price=$5&m=$mac"},
		{"$$$ then name", "http://x/?m=$$$mac", "http://x/?m=$000413AABBCC"},
		{"dollar at end", "http://x/?a=$", "http://x/?a=$"},
		{"dollar before &", "http://x/?a=$&b", "http://x/?a=$&b"},
		{"dollar before hyphen", "http://x/?a=$-1", "http://x/?a=$-1"},
		{"adjacent variables", "http://x/?$active_user$csta_id", "http://x/?1001-18"},
		{"encoding of reserved", "http://x/?s=$special", "http://x/?s=%3A%40%20%26%2B%23%25%3F%2F"},
		{"non-ASCII", "http://x/?n=$display_remote", "http://x/?n=M%C3%BCller%2C%20Hans"},
		{"host not substituted", "http://$phone_ip/x?ip=$phone_ip", "http://$phone_ip/x?ip=10.0.0.5"},
		{"userinfo not substituted", "http://u$mac:p$mac@crm/?m=$mac", "http://u$mac:p$mac@crm/?m=000413AABBCC"},
		{"port and https", "https://crm.example.com:8443/a?x=$active_user", "https://crm.example.com:8443/a?x=1001"},
		{"IPv6 host", "http://[::1]:8080/?x=$csta_id", "http://[::1]:8080/?x=-18"},
		{"scheme case kept", "HTTP://crm/?x=$csta_id", "HTTP://crm/?x=-18"},
		{"no path", "http://x?a=$csta_id", "http://x?a=-18"},
		{"only host", "http://x", "http://x"},
		{"question mark in query", "http://x/?a=$csta_id?b", "http://x/?a=-18?b"},
		{"literal space encoded", "http://x/a b?n=John Doe#f g", "http://x/a%20b?n=John%20Doe#f%20g"},
		{"literal non-ASCII encoded", "http://x/ä?n=ö", "http://x/%C3%A4?n=%C3%B6"},
		{"stray percent encoded", "http://x/a%zz?b=%41&c=%4#%", "http://x/a%25zz?b=%41&c=%254#%25"},
		{"control chars encoded", "http://x/?a=1\n2\x7f", "http://x/?a=1%0A2%7F"},
		{"empty query kept", "http://x/?", "http://x/?"},
	}
	vars := mapLookup(testVars)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.tmpl, vars)
			if err != nil {
				t.Fatalf("Expand(%q) error: %v", tt.tmpl, err)
			}
			if got != tt.want {
				t.Errorf("Expand(%q)\n got  %q\n want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

func TestExpandLookupNames(t *testing.T) {
	var asked []string
	vars := func(name string) (string, bool) {
		asked = append(asked, name)
		return "", false
	}
	if _, err := Expand("http://x/?a=$a-b-c&h=$sip_header(X-Y)&p=$$q", vars); err != nil {
		t.Fatal(err)
	}
	want := []string{"a-b-c", "a-b", "a", "sip_header(X-Y)"}
	if strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("looked up %q, want %q", asked, want)
	}
	// A nil Lookup knows nothing.
	got, err := Expand("http://x/?a=$a", nil)
	if err != nil || got != "http://x/?a=" {
		t.Errorf("nil Lookup: got %q, %v", got, err)
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		tmpl    string
		wantErr string
	}{
		{"", "empty URL"},
		{"ftp://x/?a=$mac", `scheme "ftp" is not http or https`},
		{"mailto:a@b", `scheme "mailto" is not http or https`},
		{"crm/in.php?token=abc:def", "no scheme"},
		{"/relative?x=$mac", "no scheme"},
		{":80/x", "no scheme"},
		{"1http://x/", "no scheme"},
		{"http:/x", "no // after the scheme"},
		{"http:x", "no // after the scheme"},
		{"http:///path?x=$mac", "no host"},
		{"http://user:pw@/x", "no host"},
		{"http://:80/", "no host"},
		{"http://h:port/?token=abc", "invalid port"},
		{"http://u:hunter2@h st/?token=abc", "invalid"},
		{"http://h/%zz?q=1", ""}, // literal '%' is repaired, not an error: see TestExpand
	}
	vars := mapLookup(testVars)
	for _, tt := range tests {
		got, err := Expand(tt.tmpl, vars)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Expand(%q) error %v, want none", tt.tmpl, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Expand(%q) = %q, want error containing %q", tt.tmpl, got, tt.wantErr)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.wantErr) {
			t.Errorf("Expand(%q) error %q, want it to contain %q", tt.tmpl, msg, tt.wantErr)
		}
		for _, secret := range []string{"hunter2", "token=abc", "abc:def"} {
			if strings.Contains(msg, secret) {
				t.Errorf("Expand(%q) error %q leaks %q", tt.tmpl, msg, secret)
			}
		}
	}
}

func FuzzExpand(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzExpand.
	f.Add("http://crm/in.php?Caller=$remote&Callee=$local&csta_id=$csta_id", "sip:1001@pbx", "-18")
	f.Add("http://x/$mac&/settings.xml#k=$call-id", "000413AABBCC", "a b")
	f.Fuzz(func(t *testing.T, tmpl, a, b string) {
		vars := mapLookup(map[string]string{
			"remote": a, "local": b, "csta_id": b, "call-id": a, "mac": a,
			"sip_header(X-Foo)": b, "a-b": a,
		})
		got, err := Expand(tmpl, vars)
		if err != nil {
			if got != "" {
				t.Fatalf("Expand(%q) = %q with error %v", tmpl, got, err)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil {
			t.Fatalf("Expand(%q) = %q, which url.Parse rejects: %v", tmpl, got, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("Expand(%q) = %q, scheme %q", tmpl, got, u.Scheme)
		}
		if u.Hostname() == "" {
			t.Fatalf("Expand(%q) = %q has no host", tmpl, got)
		}
		again, err := Expand(tmpl, vars)
		if err != nil || again != got {
			t.Fatalf("Expand(%q) not deterministic: %q then %q, %v", tmpl, got, again, err)
		}
	})
}

func BenchmarkExpand(b *testing.B) {
	const tmpl = "http://crm.example.com/cti/incoming.php?caller=$remote&callee=$local&id=$csta_id" +
		"&callid=$call-id&name=$display_remote&user=$active_user&mac=$mac&calls=$nr_ongoing_calls"
	vars := mapLookup(map[string]string{
		"remote": "sip:+4930123456@pbx.example.com", "local": "sip:1001@pbx.example.com", "csta_id": "-18",
		"call-id": "3c26700b7b4e-9gy5p2jx3dn1@10.0.0.5", "display_remote": "Müller, Hans",
		"active_user": "1001", "mac": "000413AABBCC", "nr_ongoing_calls": "1",
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Expand(tmpl, vars); err != nil {
			b.Fatal(err)
		}
	}
}
