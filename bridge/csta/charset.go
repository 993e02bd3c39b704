package csta

import (
	"errors"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// CTI software of the Snom era runs on Windows; besides UTF-8 it declares
// Latin-1 or windows-1252, and .NET writers may send UTF-16 with a byte order
// mark. Those are all handled here, without a dependency: like a browser
// (WHATWG Encoding), Latin-1 and US-ASCII labels decode as windows-1252, its
// superset.

var cp1252Labels = map[string]bool{
	"ansi_x3.4-1968": true, "ascii": true, "cp1252": true, "cp819": true,
	"csisolatin1": true, "ibm819": true, "iso-8859-1": true, "iso-ir-100": true,
	"iso8859-1": true, "iso88591": true, "iso_8859-1": true, "iso_8859-1:1987": true,
	"l1": true, "latin1": true, "us-ascii": true, "windows-1252": true, "x-cp1252": true,
}

var utf8Labels = map[string]bool{"utf-8": true, "utf8": true, "unicode-1-1-utf-8": true}

var utf16Labels = map[string]bool{
	"utf-16": true, "utf-16le": true, "utf-16be": true, "utf16": true,
	"unicode": true, "ucs-2": true, "iso-10646-ucs-2": true,
}

// cp1252High maps bytes 0x80..0x9F; the five bytes windows-1252 leaves
// undefined map to the C1 control of the same value, as WHATWG does.
var cp1252High = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func decodeCP1252(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range b {
		switch {
		case c < 0x80:
			out = append(out, c)
		case c < 0xA0:
			out = utf8.AppendRune(out, cp1252High[c-0x80])
		default:
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return out
}

var errUnsupportedCharset = errors.New("unsupported encoding")

// charsetReader is the xml.Decoder's CharsetReader, called only for labels
// other than "utf-8". bom reports that a byte order mark already fixed the
// encoding (and the body was converted to UTF-8): it wins over the label.
// *converted is set when the rest of the input was transcoded, so the
// caller knows the raw bytes need no UTF-8 check.
func charsetReader(bom bool, converted *bool) func(string, io.Reader) (io.Reader, error) {
	return func(label string, in io.Reader) (io.Reader, error) {
		l := strings.ToLower(strings.TrimSpace(label))
		switch {
		case bom, utf8Labels[l]:
			return in, nil
		case cp1252Labels[l]:
			// The input is a bounded in-memory body.
			b, err := io.ReadAll(in)
			if err != nil {
				return nil, err
			}
			*converted = true
			return strings.NewReader(string(decodeCP1252(b))), nil
		case utf16Labels[l]:
			return nil, errors.New("UTF-16 declared but the body has no byte order mark")
		}
		return nil, errUnsupportedCharset
	}
}

// stripBOM removes a UTF-8 byte order mark, or converts a UTF-16 body that
// starts with one to UTF-8. bom reports that a mark was found.
func stripBOM(body []byte) (out []byte, bom bool, err *Error) {
	switch {
	case len(body) >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF:
		return body[3:], true, nil
	case len(body) >= 2 && (body[0] == 0xFE && body[1] == 0xFF || body[0] == 0xFF && body[1] == 0xFE):
		be := body[0] == 0xFE
		body = body[2:]
		if len(body)%2 != 0 {
			return nil, true, errorf(Generic, "malformed XML: UTF-16 body with an odd number of bytes")
		}
		units := make([]uint16, len(body)/2)
		for i := range units {
			if be {
				units[i] = uint16(body[2*i])<<8 | uint16(body[2*i+1])
			} else {
				units[i] = uint16(body[2*i+1])<<8 | uint16(body[2*i])
			}
		}
		out = make([]byte, 0, len(units)+len(units)/2)
		for i := 0; i < len(units); i++ {
			r := rune(units[i])
			if utf16.IsSurrogate(r) {
				if i+1 >= len(units) {
					return nil, true, errorf(Generic, "malformed XML: unpaired UTF-16 surrogate")
				}
				r = utf16.DecodeRune(r, rune(units[i+1]))
				if r == utf8.RuneError {
					return nil, true, errorf(Generic, "malformed XML: unpaired UTF-16 surrogate")
				}
				i++
			}
			out = utf8.AppendRune(out, r)
		}
		return out, true, nil
	}
	return body, false, nil
}
