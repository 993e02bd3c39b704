package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxAliasDerefs bounds the work aliases and merge keys can cause, so a
// "billion laughs" file fails fast instead of hanging the loader.
const maxAliasDerefs = 10000

// maxMergeDepth bounds nested `<<:` merges (and breaks alias cycles).
const maxMergeDepth = 16

type decoder struct {
	errorList
	dir        string // directory of the file; anchors relative paths
	derefs     int
	overBudget bool
	// keyPairs: action URL client certificates already loaded (cert, key) →
	// problem or "", so 10,000 extensions sharing one load it once.
	keyPairs map[[2]string]string
	// nodes: the selected PBX's cluster nodes (name → line), nil for none.
	nodes    map[string]int
	nodeList []ESLNode
	// ariCluster: pbx.ari has nats (extensions may pin Asterisk nodes).
	ariNATS bool
}

func newDecoder(path string) *decoder {
	return &decoder{errorList: errorList{file: path}, dir: filepath.Dir(path)}
}

// entry is one key of a mapping.
type entry struct {
	key  string
	line int        // line of the key
	val  *yaml.Node // unresolved; may be an alias
}

// opt is a value that may or may not have been given in the file.
type opt[T any] struct {
	v    T
	set  bool
	line int
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data into the root node of its single YAML document. It
// returns nil (with the problem recorded) when there is nothing to decode.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on crafted input in the past; a bad config
		// file must end in an error, not a crash of the daemon on SIGHUP.
		if r := recover(); r != nil {
			d.add(0, "", "YAML parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(0, "", "file is empty")
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.add(extra.Line, "", "only one YAML document is allowed (found a second one)")
	case !errors.Is(err, io.EOF):
		d.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.add(0, "", "file is empty")
		return nil
	}
	root = doc.Content[0]
	if isNull(root) {
		d.add(root.Line, "", "file is empty")
		return nil
	}
	return root
}

func (d *decoder) yamlError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, s := range te.Errors {
			d.yamlErrorText(s)
		}
		return
	}
	d.yamlErrorText(err.Error())
}

func (d *decoder) yamlErrorText(s string) {
	if m := yamlLineErr.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.add(line, "", "%s", m[2])
		return
	}
	d.add(0, "", "%s", strings.TrimPrefix(s, "yaml: "))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// resolve follows aliases. It returns nil once the alias budget is spent.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.derefs++
		if d.derefs > maxAliasDerefs {
			if !d.overBudget {
				d.overBudget = true
				d.add(n.Line, "", "too many alias expansions (more than %d); simplify the anchors", maxAliasDerefs)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// mapping returns the entries of n, which must be a mapping (or null, which
// counts as empty). Keys not in known are reported; when known is nil every
// key is accepted (extension names, setting names).
func (d *decoder) mapping(n *yaml.Node, path string, line int, known []string) []entry {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.add(line, path, "must be a mapping (key: value), not %s", describe(n))
		return nil
	}
	all := d.entries(n, path, 0)
	if known == nil {
		return all
	}
	out := all[:0:0]
	for _, e := range all {
		if !slices.Contains(known, e.key) {
			d.add(e.line, keyPath(path, e.key), "%s", unknownKeyMsg(e.key, known))
			continue
		}
		out = append(out, e)
	}
	return out
}

// fields is mapping keyed by name.
func (d *decoder) fields(n *yaml.Node, path string, line int, known []string) map[string]entry {
	m := make(map[string]entry)
	for _, e := range d.mapping(n, path, line, known) {
		m[e.key] = e
	}
	return m
}

// entries lists a mapping's keys in file order, reporting duplicates and
// expanding YAML merge keys (`<<: *anchor`); explicit keys win over merged
// ones, and among merged mappings the first one listed wins.
func (d *decoder) entries(n *yaml.Node, path string, depth int) []entry {
	var out, merged []entry
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kr := d.resolve(k)
		if kr == nil {
			continue
		}
		if kr.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "keys must be plain strings, not %s", describe(kr))
			continue
		}
		if kr.Tag == "!!merge" {
			merged = append(merged, d.merge(v, path, k.Line, depth)...)
			continue
		}
		if first, dup := seen[kr.Value]; dup {
			d.add(k.Line, keyPath(path, kr.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[kr.Value] = k.Line
		out = append(out, entry{key: kr.Value, line: k.Line, val: v})
	}
	for _, e := range merged {
		if _, dup := seen[e.key]; !dup {
			seen[e.key] = e.line
			out = append(out, e)
		}
	}
	return out
}

func (d *decoder) merge(v *yaml.Node, path string, line, depth int) []entry {
	if depth >= maxMergeDepth {
		d.add(line, keyPath(path, "<<"), "merge keys nested too deeply (or an anchor merges itself)")
		return nil
	}
	v = d.resolve(v)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.entries(v, path, depth+1)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range v.Content {
			item = d.resolve(item)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				d.add(line, keyPath(path, "<<"), "can only merge mappings, not %s", describe(item))
				continue
			}
			out = append(out, d.entries(item, path, depth+1)...)
		}
		return out
	}
	d.add(line, keyPath(path, "<<"), "can only merge mappings, not %s", describe(v))
	return nil
}

// scalar returns e's value as written. A null value counts as not given;
// lists and mappings are reported.
func (d *decoder) scalar(e entry, path string) (string, bool) {
	v := d.resolve(e.val)
	if v == nil || isNull(v) {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		d.add(e.line, path, "must be a single value, not %s", describe(v))
		return "", false
	}
	return v.Value, true
}

// str is scalar as an opt; an empty string counts as not given.
func (d *decoder) str(e entry, path string) opt[string] {
	s, ok := d.scalar(e, path)
	return opt[string]{v: s, set: ok && s != "", line: e.line}
}

// strChecked is str that also tells whether the value was of the wrong kind
// (and so already reported).
func (d *decoder) strChecked(e entry, path string) (opt[string], bool) {
	n := len(d.errs)
	o := d.str(e, path)
	return o, len(d.errs) > n
}

// duration returns the value and its text as written.
func (d *decoder) duration(e entry, path string) (time.Duration, string, bool) {
	s, ok := d.scalar(e, path)
	if !ok {
		return 0, "", false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.add(e.line, path, "must be a duration such as 2s or 500ms (got %q)", s)
		return 0, s, false
	}
	return v, s, true
}

func (d *decoder) integer(e entry, path string) (int, bool) {
	s, ok := d.scalar(e, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		d.add(e.line, path, "must be a whole number (got %q)", s)
		return 0, false
	}
	return v, true
}

// list returns the items of a sequence with their lines. A null value counts
// as not given; an empty list is given and empty.
func (d *decoder) list(e entry, path, example string) ([]entry, bool) {
	v := d.resolve(e.val)
	if v == nil || isNull(v) {
		return nil, false
	}
	if v.Kind != yaml.SequenceNode {
		d.add(e.line, path, "must be a list such as %s, not %s", example, describe(v))
		return nil, false
	}
	items := make([]entry, 0, len(v.Content))
	for i, item := range v.Content {
		items = append(items, entry{key: fmt.Sprintf("%s[%d]", path, i), line: item.Line, val: item})
	}
	return items, true
}

// file resolves a path relative to the config file's directory.
func (d *decoder) resolvePath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}
