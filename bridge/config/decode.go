package config

import (
	"cmp"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

var topKeys = []string{"pbx", "http", "admin", "state_file", "defaults", "extensions", "cluster"}

// config decodes and validates the whole file. The result is only meaningful
// when no problem was recorded.
func (d *decoder) config(data []byte) *Config {
	root := d.document(data)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.add(root.Line, "", "the file must be a mapping with the keys pbx, http, admin, state_file, defaults and extensions, not %s", describe(root))
		return nil
	}
	top := d.fields(root, "", root.Line, topKeys)
	cfg := &Config{Path: d.errorList.file, StateFile: DefaultStateFile}

	pbxEntry, ok := top["pbx"]
	if !ok {
		d.add(root.Line, "pbx", "required (with type: sim, ari or esl)")
	}
	cfg.PBX = d.pbx(pbxEntry, ok)

	var ls []namedListener
	cfg.HTTP, ls = d.http(top["http"], ls)
	cfg.Admin, ls = d.admin(top["admin"], ls)

	if e, ok := top["state_file"]; ok {
		s, given := d.scalar(e, "state_file")
		switch {
		case !given || s == "":
			d.add(e.line, "state_file", "must be a file path (leave the key out for %s)", DefaultStateFile)
		case hasControl(s):
			d.add(e.line, "state_file", "must not contain control characters")
		default:
			cfg.StateFile = d.resolvePath(s)
		}
	}

	var defs extRaw
	if e, ok := top["defaults"]; ok {
		defs = d.extFields(e, "defaults", defaultsKeys)
	}
	cfg.Extensions, ls = d.extensions(top["extensions"], cfg.PBX.Type, defs, ls)

	ce, ok := top["cluster"]
	cfg.Cluster = d.cluster(ce, ok)

	d.checkListeners(ls)
	return cfg
}

// namedListener is a listen address with where it came from.
type namedListener struct {
	listener
	key  string
	text string
	line int // 0 for a built-in default
}

// checkListeners reports every listen address that clashes with one earlier
// in the file (defaults count as earliest).
func (d *decoder) checkListeners(ls []namedListener) {
	slices.SortStableFunc(ls, func(a, b namedListener) int { return cmp.Compare(a.line, b.line) })
	for i, l := range ls {
		for _, prev := range ls[:i] {
			if !l.overlaps(prev.listener) {
				continue
			}
			where := fmt.Sprintf("line %d", prev.line)
			if prev.line == 0 {
				where = "the default"
			}
			d.add(l.line, l.key, "%q conflicts with %s %q (%s)", l.text, prev.key, prev.text, where)
			break
		}
	}
}
