package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: whatever the bytes, Parse returns either a config or an error
// whose every line names the file, and never panics or hangs.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../../configs/example.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const path = "testdata/fuzz.yaml" // password_file etc. resolve into testdata
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(path, data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned together with an error")
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("error %T is not a joined list", err)
			}
			prev := 0
			for _, e := range joined.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("problem %T is not a *Error", e)
				}
				if ce.Line < prev {
					t.Fatalf("problems not sorted by line: %v", err)
				}
				prev = ce.Line
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Fatalf("error line does not name the file: %q", line)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without error")
		}
		switch cfg.PBX.Type {
		case TypeSim, TypeARI, TypeESL:
		default:
			t.Fatalf("accepted pbx.type %q", cfg.PBX.Type)
		}
		if !slices.IsSortedFunc(cfg.Extensions, func(a, b Extension) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatal("extensions not sorted")
		}
		users := map[string]bool{}
		for _, x := range cfg.Extensions {
			if checkExtensionName(x.Name) != "" || x.Line < 1 || x.Settings == nil {
				t.Fatalf("bad extension %+v", x)
			}
			if x.HTTPScheme != SchemeNone && (x.HTTPUser == "" || x.HTTPPass == "") {
				t.Fatalf("scheme %s without credentials", x.HTTPScheme)
			}
			if x.HTTPUser != "" && users[x.HTTPUser] {
				t.Fatalf("duplicate http_user %q", x.HTTPUser)
			}
			users[x.HTTPUser] = true
			if x.ActionURL.Timeout <= 0 || x.ActionURL.Timeout > MaxActionURLTimeout ||
				x.ActionURL.Retries < 0 || x.ActionURL.Retries > MaxActionURLRetries {
				t.Fatalf("action_url out of range: %+v", x.ActionURL)
			}
			for k, v := range x.Settings {
				if strings.HasPrefix(k, "action_") && checkActionURL(v) != "" {
					t.Fatalf("accepted %s = %q", k, v)
				}
			}
		}
	})
}
