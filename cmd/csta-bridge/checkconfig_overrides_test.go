package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -check-config names the YAML settings the state file overrides (issue 12).
func TestCheckConfigReportsOverrides(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	cfg := filepath.Join(dir, "c.yaml")
	yaml := "pbx: {type: sim}\nstate_file: " + state + "\nextensions:\n  \"1001\":\n    settings: {dnd_mode: \"off\"}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	stored := `{"version": 1, "extensions": {"1001": {"dnd_mode": "on", "redirect_number": "1002"}}}`
	if err := os.WriteFile(state, []byte(stored), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"-check-config", "-config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := `extension 1001: state file overrides dnd_mode="on" (YAML: "off"), redirect_number="1002" (not in YAML)`
	if !strings.Contains(out.String(), want) {
		t.Fatalf("-check-config printed %q, want a line %q", out.String(), want)
	}
}
