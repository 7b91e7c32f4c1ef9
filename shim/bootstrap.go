package shim

import (
	"errors"
	"fmt"
	"unicode/utf8"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// What containerd writes on the stdin of `containerd-shim-rt-v2 ... start`:
//
//   - containerd ≤ 2.2: the runtime options as a proto-encoded google.protobuf.Any, or nothing
//     when there are none. This is what the stock runc manager's Start of the v2.2 module reads
//     (shim.ReadRuntimeOptions), for the runc option ShimCgroup.
//   - containerd ≥ 2.3: a proto-encoded containerd.runtime.bootstrap.v1.BootstrapParams (the
//     "bootstrap protocol", containerd/api runtime/bootstrap/v1) with the same runtime options
//     as one of its extensions. Read as an Any, that message is the instance ID as the type URL
//     and the namespace as the value, so the stock v2.2 Start finds no options and silently
//     leaves the shim out of ShimCgroup.
//
// The command line and environment are the same in both (-namespace, -id, -address,
// -publish-binary, -debug; TTRPC_ADDRESS, GRPC_ADDRESS, NAMESPACE, GOMAXPROCS=2), so stdin is
// the only input that differs.

// maxStartInput bounds what is read from stdin: the limit containerd 2.4's own shims apply.
const maxStartInput = 10 << 20

// legacyStartInput returns input in the form containerd ≤ 2.2 writes it: input itself if it
// is in that form already, else the runtime options the bootstrap message carries (nothing if
// it carries none). id and namespace are the shim's -id and -namespace.
//
// A legacy Any can decode as a BootstrapParams too, so input is bootstrap only if its instance
// ID and namespace are the shim's own, the check containerd 2.4's own shims make
// (pkg/shim parseBootstrapParams). The payload of containerd ≤ 2.2 does not pass it: its
// "instance ID" is the options' type URL, and its "namespace" their encoding.
func legacyStartInput(input []byte, id, namespace string) ([]byte, error) {
	p, err := parseBootstrap(input)
	if err != nil || p.instanceID != id || p.namespace != namespace {
		return input, nil
	}
	opts, err := p.runtimeOptions()
	if err != nil || opts == nil {
		return nil, err
	}
	b, err := proto.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("encode runtime options of the bootstrap parameters: %w", err)
	}
	return b, nil
}

// bootstrapParams is what the shim reads of containerd's BootstrapParams. The v2.2 module the
// shim is built with predates that message (containerd/api ≥ 1.11 has it), so parseBootstrap
// decodes these fields by hand; the field numbers are bootstrap.proto's.
type bootstrapParams struct {
	instanceID string // 1: instance_id
	namespace  string // 2: namespace
	// 8: extensions, each an Extension whose field 1 is a google.protobuf.Any; containerd adds
	// the runtime options here (core/runtime/v2 command.go).
	extensions [][]byte
	// The other fields are not read: log_level (3), containerd_version (4) and the addresses
	// and binary (5-7) duplicate the command line, and socket_dir (9) cannot be honoured by the
	// v2.2 library, which always puts the shim's socket in /run/containerd/s.
}

// Field numbers in bootstrap.proto.
const (
	bootstrapInstanceID = 1
	bootstrapNamespace  = 2
	bootstrapExtensions = 8
	extensionValue      = 1
)

// bootstrapStrings are the string fields of BootstrapParams (all but log_level, 3, and
// extensions, 8): proto refuses the message if one is not UTF-8, read or not.
var bootstrapStrings = map[protowire.Number]bool{1: true, 2: true, 4: true, 5: true, 6: true, 7: true, 9: true}

var errNotBootstrap = errors.New("not a bootstrap message")

// parseBootstrap decodes b as a BootstrapParams as proto.Unmarshal would: fields it does not
// know, or with another wire type than theirs, are skipped; the last of a repeated scalar
// wins; strings must be UTF-8. The extensions are decoded by runtimeOptions.
func parseBootstrap(b []byte) (*bootstrapParams, error) {
	var p bootstrapParams
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNotBootstrap, err)
		}
		b = b[n:]
		if typ != protowire.BytesType || !bootstrapStrings[num] && num != bootstrapExtensions {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, fmt.Errorf("%w: field %d: %w", errNotBootstrap, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: field %d: %w", errNotBootstrap, num, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == bootstrapExtensions:
			p.extensions = append(p.extensions, v)
		case !utf8.Valid(v):
			return nil, fmt.Errorf("%w: field %d is not UTF-8", errNotBootstrap, num)
		case num == bootstrapInstanceID:
			p.instanceID = string(v)
		case num == bootstrapNamespace:
			p.namespace = string(v)
		}
	}
	return &p, nil
}

// runtimeOptions returns the first extension that holds runtime options the shim takes (runc
// options, or runtimeoptions for io.containerd.rt.v2), or nil. Other extensions (containerd
// means them for future features) are not the runtime options containerd ≤ 2.2 would write,
// but must decode too, as proto.Unmarshal checks them all.
func (p *bootstrapParams) runtimeOptions() (*types.Any, error) {
	var opts *types.Any
	for i, ext := range p.extensions {
		a, err := extensionAny(ext)
		if err != nil {
			return nil, fmt.Errorf("bootstrap parameters: extension %d: %w", i, err)
		}
		if opts == nil && a != nil && (typeurl.Is(a, &runcoptions.Options{}) || typeurl.Is(a, &runtimeoptions.Options{})) {
			opts = a
		}
	}
	return opts, nil
}

// extensionAny decodes an Extension: its field 1, a google.protobuf.Any, merged over repeats
// as proto does for a message field; nil if it has none.
func extensionAny(b []byte) (*types.Any, error) {
	var a *types.Any
	for len(b) > 0 {
		num, typ, n, err := consumeTag(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		if num != extensionValue || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if a == nil {
			a = &types.Any{}
		}
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, a); err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
	}
	return a, nil
}

// consumeTag is protowire.ConsumeTag refusing, as proto.Unmarshal does, field numbers above
// the largest valid one.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, n, protowire.ParseError(n)
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, -1, fmt.Errorf("invalid field number %d", num)
	}
	return num, typ, n, nil
}
