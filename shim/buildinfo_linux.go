package shim

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// goMainPath returns the main package path a Go binary (ELF, Go ≥ 1.18) records in its
// .go.buildinfo section: a header that starts with buildInfoMagic, whose flags byte says
// the strings follow it inline, then the Go version and the module info, each prefixed with
// its length as a uvarint; the module info, between two 16-byte sentinels, has a line
// "path\t<main package>".
//
// debug/buildinfo reads the same, for every executable format: linking it (and debug/macho,
// debug/pe, debug/plan9obj, internal/xcoff with it) made every shim process ~0.4 MB larger,
// for a check that only `shim start` makes. debug/elf is linked anyway (cilium/ebpf).
func goMainPath(bin string) (string, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sec := f.Section(".go.buildinfo")
	if sec == nil {
		return "", errors.New("no .go.buildinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("read .go.buildinfo: %w", err)
	}
	return parseBuildInfo(data)
}

const (
	buildInfoMagic      = "\xff Go buildinf:"
	buildInfoHeaderSize = 32
	buildInfoFlags      = 15  // offset of the flags byte in the header
	buildInfoInline     = 0x2 // flag: the strings follow the header (Go ≥ 1.18)
	sentinelSize        = 16  // around the module info (cmd/go's modinfo start and end markers)
)

func parseBuildInfo(data []byte) (string, error) {
	i := bytes.Index(data, []byte(buildInfoMagic))
	if i < 0 || len(data)-i < buildInfoHeaderSize {
		return "", errors.New("no Go build info header")
	}
	if data[i+buildInfoFlags]&buildInfoInline == 0 {
		return "", errors.New("build info of Go before 1.18 (pointers, not inline strings)")
	}
	rest := data[i+buildInfoHeaderSize:]
	var mod []byte
	for range 2 { // the Go version, then the module info
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return "", errors.New("truncated Go build info")
		}
		mod, rest = rest[w:w+int(n)], rest[w+int(n):]
	}
	if len(mod) < 2*sentinelSize+1 || mod[len(mod)-sentinelSize-1] != '\n' {
		return "", errors.New("build info without module info")
	}
	for line := range strings.SplitSeq(string(mod[sentinelSize:len(mod)-sentinelSize]), "\n") {
		if p, ok := strings.CutPrefix(line, "path\t"); ok {
			return p, nil
		}
	}
	return "", errors.New("build info without a main package path")
}
