package shim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The files in testdata/start-stdin are what containerd v2.0.14 and v2.4.2 (tools/ and
// tools/containerd-2.0/) wrote on the stdin of `containerd-shim-{runc,rt}-v2 ... start`,
// captured by a shell script in the shim's place that saved stdin and then ran the shim on it,
// while the integration framework's daemons ran four containers:
//
//	runcopts  io.containerd.runc.v2, containerd's client WithShimCgroup("/<namespace>/shim")
//	rtopts    io.containerd.rt.v2, ctr run --runtime-config-path <file>: runtimeoptions
//	noopts    io.containerd.rt.v2, ctr run: no runtime options
//	ctrrunc   io.containerd.runc.v2, ctr run: empty runc options
//
// The daemons ran at debug level with socket_dir set (v2.4.2), as the integration tests run
// them.
var captures = map[string]struct{ namespace string }{
	"containerd-v2.0.14": {"rtshim-it-1054258463"},
	"containerd-v2.4.2":  {"rtshim-it-3843072898"},
}

func readCapture(t testing.TB, daemon, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "start-stdin", daemon+"-"+id+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLegacyStartInputCaptured: what the stock Start reads (shim.ReadRuntimeOptions of the v2.2
// module) from legacyStartInput's result is the runtime options containerd sent, from
// either daemon; containerd 2.0's input is passed on unchanged.
func TestLegacyStartInputCaptured(t *testing.T) {
	for daemon, c := range captures {
		for _, tc := range []struct {
			id         string
			shimCgroup string // want runc options with this ShimCgroup
			configPath string // want runtimeoptions with a ConfigPath ending so
			none       bool   // want no options
		}{
			{id: "runcopts", shimCgroup: "/" + c.namespace + "/shim"},
			{id: "rtopts", configPath: "/rtshim.toml"},
			{id: "noopts", none: true},
			{id: "ctrrunc", shimCgroup: ""},
		} {
			t.Run(daemon+"/"+tc.id, func(t *testing.T) {
				input := readCapture(t, daemon, tc.id)
				got, err := legacyStartInput(input, tc.id, c.namespace)
				if err != nil {
					t.Fatal(err)
				}
				bootstrap := strings.HasPrefix(daemon, "containerd-v2.4")
				if !bootstrap && !bytes.Equal(got, input) {
					t.Errorf("containerd 2.0's input changed:\n got %q\nwant %q", got, input)
				}
				if bootstrap && tc.shimCgroup != "" {
					// The premise: read as it comes, the bootstrap message holds no runc options.
					if o, err := shim.ReadRuntimeOptions[*runcoptions.Options](bytes.NewReader(input)); err == nil {
						t.Errorf("stock reader found %v in the raw bootstrap message", o)
					}
				}

				switch {
				case tc.none:
					if _, err := shim.ReadRuntimeOptions[*runcoptions.Options](bytes.NewReader(got)); !errors.Is(err, errdefs.ErrNotFound) {
						t.Errorf("got %q (%v), want no options", got, err)
					}
				case tc.configPath != "":
					o, err := shim.ReadRuntimeOptions[*runtimeoptions.Options](bytes.NewReader(got))
					if err != nil || !strings.HasSuffix(o.GetConfigPath(), tc.configPath) {
						t.Errorf("runtimeoptions %v (%v), want ConfigPath .../%s", o, err, tc.configPath)
					}
				default:
					o, err := shim.ReadRuntimeOptions[*runcoptions.Options](bytes.NewReader(got))
					if err != nil || o.GetShimCgroup() != tc.shimCgroup {
						t.Errorf("runc options %v (%v), want ShimCgroup %q", o, err, tc.shimCgroup)
					}
				}
			})
		}
	}
	// Where no value of the run is in the options, both daemons' payloads end up the same.
	for _, id := range []string{"ctrrunc", "noopts"} {
		var out [][]byte
		for daemon, c := range captures {
			got, err := legacyStartInput(readCapture(t, daemon, id), id, c.namespace)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got)
		}
		if !bytes.Equal(out[0], out[1]) {
			t.Errorf("%s: legacy forms differ: %q, %q", id, out[0], out[1])
		}
	}
}

// bootstrapMsg encodes a BootstrapParams with the bootstrap.proto field numbers; extra is
// appended raw.
func bootstrapMsg(id, ns string, extra []byte, exts ...proto.Message) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, id)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, ns)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, "v2.9.0")
	for _, m := range exts {
		a, err := typeurl.MarshalAnyToProto(m)
		if err != nil {
			panic(err)
		}
		v, err := proto.Marshal(a)
		if err != nil {
			panic(err)
		}
		var ext []byte
		ext = protowire.AppendTag(ext, 1, protowire.BytesType)
		ext = protowire.AppendBytes(ext, v)
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, ext)
	}
	return append(b, extra...)
}

func mustAny(t testing.TB, m proto.Message) []byte {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLegacyStartInput(t *testing.T) {
	runc := &runcoptions.Options{ShimCgroup: "/pod/shim", SystemdCgroup: true}
	malformedExt := protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0x0a, 0x05, 'x'}))
	for _, tc := range []struct {
		name  string
		input []byte
		want  []byte // nil: no options
		err   string
	}{
		{name: "empty", input: nil, want: nil},
		{name: "legacy runc options", input: mustAny(t, runc), want: mustAny(t, runc)},
		{name: "bootstrap with runc options", input: bootstrapMsg("c1", "ns", nil, runc), want: mustAny(t, runc)},
		{name: "bootstrap without options", input: bootstrapMsg("c1", "ns", nil), want: nil},
		// Extensions for other features come before the runtime options: skipped.
		{name: "other extension first", input: bootstrapMsg("c1", "ns", nil, &emptypb.Empty{}, runc), want: mustAny(t, runc)},
		{name: "only other extensions", input: bootstrapMsg("c1", "ns", nil, &emptypb.Empty{}), want: nil},
		{name: "runtimeoptions", input: bootstrapMsg("c1", "ns", nil, &runtimeoptions.Options{ConfigBody: []byte("x")}),
			want: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("x")})},
		// Fields the shim does not read, and a later namespace that wins as in proto.
		{name: "unknown fields", input: bootstrapMsg("c1", "other", protowire.AppendString(protowire.AppendTag(
			protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), protowire.EncodeZigZag(-4)),
			2, protowire.BytesType), "ns"), runc), want: mustAny(t, runc)},
		// Not this shim's identity: not a bootstrap message, passed on unchanged.
		{name: "other id", input: bootstrapMsg("c2", "ns", nil, runc), want: bootstrapMsg("c2", "ns", nil, runc)},
		{name: "other namespace", input: bootstrapMsg("c1", "ns2", nil, runc), want: bootstrapMsg("c1", "ns2", nil, runc)},
		{name: "truncated", input: bootstrapMsg("c1", "ns", nil, runc)[:20], want: bootstrapMsg("c1", "ns", nil, runc)[:20]},
		{name: "not UTF-8", input: bootstrapMsg("c1\xff", "ns", nil, runc), want: bootstrapMsg("c1\xff", "ns", nil, runc)},
		// Ours, but an extension does not decode: an error, as containerd 2.4's own shims fail.
		{name: "malformed extension", input: bootstrapMsg("c1", "ns", malformedExt), err: "extension 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := legacyStartInput(tc.input, "c1", "ns")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A legacy Any whose type URL is the shim's ID and whose value is its namespace reads as a
// bootstrap message without options; the stock reader found no options in it either, as no
// options type is named so.
func TestLegacyStartInputLookalike(t *testing.T) {
	input, err := proto.Marshal(&types.Any{TypeUrl: "c1", Value: []byte("ns")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := legacyStartInput(input, "c1", "ns")
	if err != nil || got != nil {
		t.Fatalf("got %q, %v; want no options", got, err)
	}
	if _, err := shim.ReadRuntimeOptions[*runcoptions.Options](bytes.NewReader(input)); err == nil {
		t.Fatal("stock reader found options in it")
	}
}

// FuzzLegacyStartInput: any input either passes unchanged, or was a bootstrap message of this
// shim's identity and becomes nothing or options of a type the shim accepts.
func FuzzLegacyStartInput(f *testing.F) {
	for daemon, c := range captures {
		for _, id := range []string{"runcopts", "rtopts", "noopts", "ctrrunc"} {
			f.Add(readCapture(f, daemon, id), id, c.namespace)
		}
	}
	f.Add(bootstrapMsg("c1", "ns", nil, &emptypb.Empty{}, &runcoptions.Options{ShimCgroup: "/x"}), "c1", "ns")
	f.Fuzz(func(t *testing.T, input []byte, id, ns string) {
		got, err := legacyStartInput(input, id, ns)
		p, perr := parseBootstrap(input)
		ours := perr == nil && p.instanceID == id && p.namespace == ns
		if !ours {
			if err != nil || !bytes.Equal(got, input) {
				t.Fatalf("not ours, but got %q, %v", got, err)
			}
			return
		}
		if err != nil || got == nil {
			return
		}
		var a types.Any
		if err := proto.Unmarshal(got, &a); err != nil {
			t.Fatalf("result %q does not decode: %v", got, err)
		}
		if !typeurl.Is(&a, &runcoptions.Options{}) && !typeurl.Is(&a, &runtimeoptions.Options{}) {
			t.Fatalf("result of type %q", a.GetTypeUrl())
		}
	})
}
