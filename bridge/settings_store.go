package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
)

// stateFile is what /dummy.htm?…&store_settings=save persists: settings a CTI
// client installed, per extension. They override the YAML file's settings
// and survive restarts and reloads, as settings stored in a phone's flash do.
//
// A stopping bridge also writes the live calls it leaves to the PBX, and
// what it last told the CTI software about each, so that the next one
// reports only what changed meanwhile (callsleft.go).
type stateFile struct {
	Version    int                          `json:"version"`
	Extensions map[string]map[string]string `json:"extensions"`
	Calls      map[string][]leftCall        `json:"calls,omitempty"`
}

// loadStoredSettings reads the state file at start-up. A missing file is
// normal; a broken one is logged and ignored, so it cannot keep the bridge down.
func (a *App) loadStoredSettings() {
	a.loadStored()
	a.logOverrides(a.cfg.Load())
}

func (a *App) loadStored() {
	path := a.cfg.Load().StateFile
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.stored = map[string]map[string]string{}
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st stateFile
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		a.log.Error("state file unreadable; starting without stored settings", "path", path, "err", err)
		return
	}
	a.left = st.Calls
	for ext, settings := range st.Extensions {
		a.stored[ext] = map[string]string{}
		for name, v := range settings {
			if settingWritable(name) {
				a.stored[ext][name] = v
			}
		}
	}
}

// storedFor returns a copy of the stored settings of ext.
func (a *App) storedFor(ext string) map[string]string {
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	return maps.Clone(a.stored[ext])
}

// setRuntimeSettings changes settings of ext now, and persists them when asked.
func (a *App) setRuntimeSettings(ext string, changed map[string]string, persist bool) error {
	for name, v := range changed {
		if knownActionSettings[name] && !validActionURL(v) {
			a.log.Warn("setting is not an http(s) URL; it will fail when it fires", "ext", ext, "setting", name)
		}
	}
	if persist {
		if err := a.persistSettings(ext, changed); err != nil {
			return err
		}
	}
	return a.sb.do(context.Background(), func() { a.sb.setSettings(ext, changed) })
}

// storeFeatures changes feature settings as the phone's user does (CSTA,
// the DND key): at once, and kept in the state file when there is one.
func (a *App) storeFeatures(ext string, changed map[string]string) error {
	return a.setRuntimeSettings(ext, changed, a.cfg.Load().StateFile != "")
}

func (a *App) persistSettings(ext string, changed map[string]string) error {
	path := a.cfg.Load().StateFile
	if path == "" {
		return errors.New("no state_file configured")
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	next := make(map[string]map[string]string, len(a.stored)+1)
	for e, s := range a.stored {
		next[e] = maps.Clone(s)
	}
	if next[ext] == nil {
		next[ext] = map[string]string{}
	}
	maps.Copy(next[ext], changed)
	if err := a.writeStored(path, next); err != nil {
		return err
	}
	a.stored = next
	return nil
}

// writeStored writes the stored settings; the caller holds stateMu.
func (a *App) writeStored(path string, stored map[string]map[string]string) error {
	b, err := json.MarshalIndent(stateFile{Version: 1, Extensions: stored}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic replaces path so that a crash leaves the old or the new
// file, never half of one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".settings-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
