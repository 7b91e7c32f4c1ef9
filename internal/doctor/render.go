package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as one JSON object (see docs/doctor.md for its shape).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: a verdict line, then each finding with what was
// seen, why it matters and the fix. saw and why are wrapped to width columns (0: no wrapping);
// fix never is, so a command in it pastes into a shell intact.
func (r Report) WriteText(w io.Writer, width int) error {
	verdict := "READY"
	if !r.Ready {
		verdict = "NOT READY"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rtshim doctor: %s for real-time containers (%d fail, %d warn, %d info, %d ok)\n",
		verdict, r.Counts[Fail], r.Counts[Warn], r.Counts[Info], r.Counts[OK])
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n%-6s %s: %s\n", label(f.Severity), f.ID, f.Title)
		writeField(&b, "saw", f.Saw, width)
		writeField(&b, "why", f.Why, width)
		writeField(&b, "fix", f.Fix, 0)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func label(s Severity) string {
	if s == Fail || s == Warn {
		return "[" + strings.ToUpper(string(s)) + "]"
	}
	return "[" + string(s) + "]"
}

// writeField writes "  saw: ..." with continuation lines indented under the text.
func writeField(b *strings.Builder, name, text string, width int) {
	if text = strings.TrimSpace(text); text == "" {
		return
	}
	prefix := "       " + name + ": "
	indent := strings.Repeat(" ", len(prefix))
	lines := []string{text}
	if width > 0 {
		lines = wrap(text, width-len(prefix))
	}
	for i, line := range lines {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(indent)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}

// wrap breaks text at spaces into lines of at most width runes; a longer word (a path, a
// command) gets a line of its own rather than being cut, so it can still be copied.
func wrap(text string, width int) []string {
	width = max(width, 20)
	var lines []string
	var cur strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		wl := len([]rune(word))
		if n > 0 && n+1+wl > width {
			lines = append(lines, cur.String())
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(word)
		n += wl
	}
	if n > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
