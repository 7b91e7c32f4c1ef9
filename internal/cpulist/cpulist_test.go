package cpulist

import "testing"

func TestParseAndString(t *testing.T) {
	// " 7 , 7-8 ": the kernel's files end in a newline, users add spaces.
	for in, want := range map[string]string{"": "", "0-3,5": "0-3,5", "5,0,1,2,3": "0-3,5", " 7 , 7-8 ": "7-8", "0,2,4": "0,2,4"} { //nolint:gocritic // the spaces are the case

		s, err := Parse(in)
		if err != nil || s.String() != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, s, err, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "-1", "1-", "9000", "1;2"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestSetOps(t *testing.T) {
	a, b := Of(0, 1, 2, 3), Of(2, 3, 4)
	if got := a.Minus(b).String(); got != "0-1" {
		t.Errorf("minus %s", got)
	}
	if got := a.Union(b).String(); got != "0-4" {
		t.Errorf("union %s", got)
	}
	if got := a.Intersect(b).String(); got != "2-3" {
		t.Errorf("intersect %s", got)
	}
	if !Of(2).SubsetOf(a) || b.SubsetOf(a) {
		t.Error("subset")
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct {
		mask string
		list string
	}{{"f", "0-3"}, {"0000000d", "0,2-3"}, {"00000001,00000000", "32"}, {"00000000", ""}} {
		s, err := ParseMask(tc.mask)
		if err != nil || s.String() != tc.list {
			t.Errorf("ParseMask(%q) = %q, %v; want %q", tc.mask, s, err, tc.list)
		}
	}
	if got := Of(0, 2, 3).Mask(4); got != "0000000d" {
		t.Errorf("Mask = %q", got)
	}
	if got := Of(1).Mask(40); got != "00000000,00000002" {
		t.Errorf("Mask(40) = %q", got)
	}
	if _, err := ParseMask("xyz"); err == nil {
		t.Error("bad mask accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0-3,5")
	f.Add("1-1000000")
	f.Fuzz(func(t *testing.T, s string) {
		set, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(set.String())
		if err != nil || !again.Equal(set) {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}
