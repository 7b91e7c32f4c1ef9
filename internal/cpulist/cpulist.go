// Package cpulist is the kernel's two spellings of a set of CPUs: the list form of cpuset.cpus,
// smp_affinity_list and /sys/devices/system/cpu/online ("0-3,5"), and the hex mask form of
// /proc/irq/*/smp_affinity and default_smp_affinity ("0000000f", 32-bit words separated by
// commas, most significant first). A Set is sorted and has no duplicates.
package cpulist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Max bounds CPU numbers (the kernel's largest NR_CPUS).
const Max = 8192

// Set is a sorted set of CPU numbers without duplicates.
type Set []int

// Parse parses a CPU list ("0-3,5,7-8"; "" is the empty set).
func Parse(s string) (Set, error) {
	var seen [Max]bool
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		if last >= Max {
			return nil, fmt.Errorf("CPU %d is beyond %d", last, Max-1)
		}
		for c := first; c <= last; c++ {
			seen[c] = true
		}
	}
	var out Set
	for c, ok := range seen {
		if ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// Of builds a Set from CPU numbers in any order.
func Of(cpus ...int) Set {
	s := slices.Clone(cpus)
	slices.Sort(s)
	return slices.Compact(s)
}

// String is the list form with ranges: "0-3,5".
func (s Set) String() string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

func (s Set) Contains(c int) bool { _, ok := slices.BinarySearch(s, c); return ok }

func (s Set) Empty() bool { return len(s) == 0 }

func (s Set) Equal(o Set) bool { return slices.Equal(s, o) }

// Union is s ∪ o.
func (s Set) Union(o Set) Set { return Of(append(slices.Clone(s), o...)...) }

// Minus is s \ o.
func (s Set) Minus(o Set) Set {
	var out Set
	for _, c := range s {
		if !o.Contains(c) {
			out = append(out, c)
		}
	}
	return out
}

// Intersect is s ∩ o.
func (s Set) Intersect(o Set) Set {
	var out Set
	for _, c := range s {
		if o.Contains(c) {
			out = append(out, c)
		}
	}
	return out
}

// SubsetOf reports s ⊆ o.
func (s Set) SubsetOf(o Set) bool { return len(s.Minus(o)) == 0 }

// ParseMask parses the hex mask form ("00000000,0000000f"; commas optional).
func ParseMask(s string) (Set, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if h == "" {
		return nil, fmt.Errorf("empty CPU mask")
	}
	var out Set
	for i := len(h) - 1; i >= 0; i-- {
		v, err := strconv.ParseUint(h[i:i+1], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%q is not a hex CPU mask", s)
		}
		base := (len(h) - 1 - i) * 4
		for b := 0; b < 4; b++ {
			if v&(1<<b) != 0 {
				if base+b >= Max {
					return nil, fmt.Errorf("CPU mask %q names a CPU beyond %d", s, Max-1)
				}
				out = append(out, base+b)
			}
		}
	}
	return Of(out...), nil
}

// Mask is the hex mask form, in as many 32-bit words as width CPUs need (at least one): the
// kernel refuses a mask longer than its CPU count rounded up to 32 bits.
func (s Set) Mask(width int) string {
	words := max(1, (max(width, s.top()+1)+31)/32)
	w := make([]uint32, words)
	for _, c := range s {
		w[c/32] |= 1 << (c % 32)
	}
	parts := make([]string, words)
	for i := range w {
		parts[words-1-i] = fmt.Sprintf("%08x", w[i])
	}
	return strings.Join(parts, ",")
}

func (s Set) top() int {
	if len(s) == 0 {
		return -1
	}
	return s[len(s)-1]
}
