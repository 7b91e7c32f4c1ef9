// rtshim is the operator's tool for rtshim hosts: `rtshim doctor` checks whether the host can
// run real-time containers, `rtshim status` lists the ones it runs. See `rtshim --help`.
package main

import "os"

func main() {
	os.Exit(newApp(os.Stdout, os.Stderr).run(os.Args[1:]))
}
