package wrapper

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rtshim/rtshim/oci"
	"github.com/rtshim/rtshim/rtcontainer"
)

func TestRewriteUpdate(t *testing.T) {
	rt := &rtcontainer.Container{Req: &oci.Request{Sched: oci.Sched{Policy: oci.PolicyFIFO, Priority: 50}, CPUQuota: oci.QuotaDisable,
		RTRuntimeUS: 1000, RTPeriodUS: 1000000}}
	keep := &rtcontainer.Container{Req: &oci.Request{Sched: oci.Sched{Policy: oci.PolicyFIFO, Priority: 50}, CPUQuota: oci.QuotaKeep,
		RTRuntimeUS: 1000, RTPeriodUS: 1000000}}
	for _, tc := range []struct {
		name string
		c    *rtcontainer.Container
		in   []string
		want []string
	}{
		{"flags", rt, []string{"--root", "/r", "update", "--cpu-quota", "20000", "--cpu-rt-runtime=5000", "--cpu-rt-period", "10000", "--memory", "1M", "c1"},
			[]string{"--root", "/r", "update", "--cpu-quota=-1", "--memory", "1M", "c1"}},
		{"quota kept", keep, []string{"update", "--cpu-quota=20000", "--cpu-rt-runtime", "5000", "c1"},
			[]string{"update", "--cpu-quota=20000", "c1"}},
		{"nothing of ours", rt, []string{"update", "--pids-limit", "10", "c1"}, []string{"update", "--pids-limit", "10", "c1"}},
	} {
		got, cleanup, err := rewriteUpdate(tc.in, tc.c, strings.NewReader(""))
		cleanup()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}

	// The --resources - form containerd's shim (and so Docker) uses.
	quota, rtRuntime := int64(20000), int64(5000)
	in, _ := json.Marshal(specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, RealtimeRuntime: &rtRuntime}})
	got, cleanup, err := rewriteUpdate([]string{"update", "--resources", "-", "c1"}, rt, strings.NewReader(string(in)))
	defer cleanup()
	if err != nil || len(got) != 3 || !strings.HasPrefix(got[1], "--resources=") || got[2] != "c1" {
		t.Fatalf("resources form: %q, %v", got, err)
	}
	b, err := os.ReadFile(strings.TrimPrefix(got[1], "--resources="))
	if err != nil {
		t.Fatal(err)
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(b, &res); err != nil || res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != -1 || res.CPU.RealtimeRuntime != nil {
		t.Errorf("rewritten resources %s, %v: want quota -1 and no RT runtime", b, err)
	}
	if _, _, err := rewriteUpdate([]string{"update", "-r", "-", "c1"}, rt, strings.NewReader("{")); err == nil {
		t.Error("malformed resources accepted")
	}
}

func TestIsSIGKILL(t *testing.T) {
	for s, want := range map[string]bool{"KILL": true, "SIGKILL": true, "9": true, "kill": true, "TERM": false, "15": false, "SIGTERM": false, "": false} {
		if got := isSIGKILL(s); got != want {
			t.Errorf("isSIGKILL(%q) = %v", s, got)
		}
	}
}

func TestRenameRunc(t *testing.T) {
	in := "NAME:\n   runc create - create a container\n\nUSAGE:\n   runc create [command options] <container-id>\n\nthe runc binary and runc's state\n"
	want := "NAME:\n   runc-rt create - create a container\n\nUSAGE:\n   runc-rt create [command options] <container-id>\n\nthe runc binary and runc's state\n"
	if got := string(renameRunc([]byte(in), "runc-rt")); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
