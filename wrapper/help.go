package wrapper

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// help shows runc's help for a command (`runc-rt create --help`, `runc-rt help create`) under
// the name runc-rt was called by: runc's own help says "runc", which is not the command the
// user typed. Everything else of it is runc's.
func (w Wrapper) help(runc string, args []string) int {
	out, err := exec.Command(runc, args...).CombinedOutput()
	name := filepath.Base(os.Args[0])
	if name == "" || name == "." {
		name = "runc-rt"
	}
	os.Stdout.Write(renameRunc(out, name))
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(w.Stderr, "runc-rt: %s: %v\n", runc, err)
		return 1
	}
	return 0
}

// runcName is "runc" where runc's help names itself: "   runc create - ...", "   runc create
// [command options] <container-id>", "runc - Open Container Initiative runtime".
var runcName = regexp.MustCompile(`(?m)^(\s*)runc\b`)

func renameRunc(help []byte, name string) []byte {
	return runcName.ReplaceAll(help, append([]byte("${1}"), bytes.ReplaceAll([]byte(name), []byte("$"), []byte("$$"))...))
}
