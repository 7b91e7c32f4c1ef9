package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true}, {[]string{"-v"}, true},
		// runc's subcommands' flags and anything else are runc's alone.
		{[]string{"create", "--version"}, false}, {[]string{"--root", "/r", "--version"}, false}, {nil, false},
	} {
		var b bytes.Buffer
		printVersion(&b, tc.args)
		if got := strings.HasPrefix(b.String(), "runc-rt version ") && strings.HasSuffix(b.String(), "\n"); got != tc.want || !tc.want && b.Len() > 0 {
			t.Errorf("%q: printed %q, want a version line: %v", tc.args, b.String(), tc.want)
		}
	}
}
