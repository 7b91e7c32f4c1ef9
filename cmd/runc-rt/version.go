package main

import (
	"fmt"
	"io"

	"github.com/rtshim/rtshim/internal/version"
)

// printVersion writes rtshim's line for runc-rt --version (or -v); the real runc's own version
// follows it. The line goes to stderr: stdout stays exactly runc's, because parsers of it
// (go-runc's Version, which containerd's tooling and rtshim itself use) want "runc version" on
// its first line.
func printVersion(stderr io.Writer, args []string) {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-v" || args[0] == "-version") {
		fmt.Fprintln(stderr, version.Get().Line("runc-rt"))
	}
}
