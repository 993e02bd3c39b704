package actionurl

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://crm/in.php?a=1&b=2", "http://crm/in.php?a=1&b=2"},
		{"http://u:p@h/x?token=abc&a=1", "http://u@h/x?token=redacted&a=1"},
		{"https://u@h/x", "https://u@h/x"},
		{"http://h/?Password=x&PWD=y&api_key=z&Auth=1&sig=2&SessionID=3&sid=4&side=5&pin=6&Client_Secret=7",
			"http://h/?Password=redacted&PWD=redacted&api_key=redacted&Auth=redacted&sig=redacted" +
				"&SessionID=redacted&sid=redacted&side=5&pin=redacted&Client_Secret=redacted"},
		{"http://h/?tok%65n=abc&x=%41", "http://h/?tok%65n=redacted&x=%41"},
		{"http://h/?access+token=abc", "http://h/?access+token=redacted"},
		{"http://h/?token=&token", "http://h/?token=&token"},
		{"http://h/?a=1&&token=x&", "http://h/?a=1&&token=redacted&"},
		{"http://h/?a=x=y&key=a=b", "http://h/?a=x=y&key=redacted"},
		{"http://h/t.xml#k=1&token=abc", "http://h/t.xml#k=1&token=redacted"},
		{"http://h/t.xml#section", "http://h/t.xml#section"},
		{"http://h/?", "http://h/?"},
		{"http://[::1]:8080/p?secret=s", "http://[::1]:8080/p?secret=redacted"},
		// Unparsable: cut query, fragment and userinfo.
		{"http://u:p@h:bad/x?token=abc", "http://h:bad/x"},
		{"http://u:p@h st/x#token=abc", "http://h st/x"},
		{"http://h/%zz?token=abc", "http://h/%zz"},
		{"u:p@h/x?token=abc", "u:h/x?token=redacted"}, // no scheme: "u" parses as one, "p@h/x" as opaque
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n got  %q\n want %q", tt.in, got, tt.want)
		}
	}
}
