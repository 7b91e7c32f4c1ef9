// Command benchreport writes docs/benchmarks.md from the sections the benchmarks of
// `make bench` saved (see bench/report).
//
//	go run ./bench/cmd/benchreport -in _output/bench-report -out docs/benchmarks.md -command 'make bench'
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rtshim/rtshim/bench/report"
)

func main() {
	in := flag.String("in", "", "directory of the benchmarks' sections (RTSHIM_BENCH_REPORT_DIR)")
	out := flag.String("out", "docs/benchmarks.md", "the page to write; its figures go to the directory of the same name without .md")
	command := flag.String("command", "", "the command line that made the figures, for the page")
	note := flag.String("note", "", "a note for the page's header, e.g. what else ran on the host")
	flag.Parse()
	if *in == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	err := report.Assemble(*in, *out, report.Options{
		Command: *command,
		Note:    *note,
		Host:    report.HostInfo("/proc", "/sys"),
		Now:     time.Now(),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("benchreport: wrote %s\n", *out)
}
