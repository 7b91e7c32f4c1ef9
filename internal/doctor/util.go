package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rtshim/rtshim/cgroupfix"
)

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// readInt reads a file holding one integer (procfs, sysfs) the way cgroup files are read.
func readInt(path string) (int64, error) {
	return cgroupfix.ReadInt(cgroupfix.DirFS{Root: filepath.Dir(path)}, "/", filepath.Base(path))
}

func atoiPositive(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// isExecutable is what exec would accept: a regular file with an execute bit.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// lookPath searches pathList (a $PATH value) for an executable name. It does not use
// exec.LookPath, which reads this process's own environment, not the PATH being checked.
func lookPath(pathList, name string) string {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // containerd resolves from / , not from our working directory
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	return ""
}

// cpuList formats CPU numbers the way the kernel writes them: "0-3,6".
func cpuList(cpus []int) string {
	sort.Ints(cpus)
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// cpuNumber is N of a ".../cpuN/..." sysfs path, -1 if none.
func cpuNumber(path string) int {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if n, err := strconv.Atoi(strings.TrimPrefix(part, "cpu")); err == nil && strings.HasPrefix(part, "cpu") {
			return n
		}
	}
	return -1
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
