package oci

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotation keys a container uses to ask for a policy. A Kubernetes pod can target one of its
// containers with KeyX + ContainerInfix + name, e.g. "rtshim.io/priority.container.ctl".
const (
	Prefix         = "rtshim.io/"
	KeyPolicy      = Prefix + "policy"
	KeyPriority    = Prefix + "priority"
	KeyNice        = Prefix + "nice"
	KeyDeadline    = Prefix + "deadline"
	KeyResetOnFork = Prefix + "reset-on-fork"
	KeyMode        = Prefix + "mode"
	KeyRTRuntimeUS = Prefix + "rt-runtime-us"
	KeyCPUQuota    = Prefix + "cpu-quota"
	KeyExecPolicy  = Prefix + "exec-policy"

	// ContainerInfix separates a key from the container name it is meant for. Pod annotations
	// are copied into every container of the pod (pause included), so this is the only way to
	// give the pod's containers different settings.
	ContainerInfix = ".container."

	// EnvPrefix starts the environment variable form of every key: KeyRTRuntimeUS is
	// RTSHIM_RT_RUNTIME_US (see EnvName).
	EnvPrefix = "RTSHIM_"
)

// Annotations containerd's CRI plugin adds to every container's spec.
const (
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	AnnotationContainerName = "io.kubernetes.cri.container-name"
	ContainerTypeSandbox    = "sandbox"
)

// EnvKeys lists the keys that have an RTSHIM_ variable form, in the order error messages show
// them. The tuning keys have none: they change host-global settings, which an image's ENV must
// never ask for, whatever limits.honor_env says.
var EnvKeys = []string{KeyPolicy, KeyPriority, KeyNice, KeyDeadline, KeyResetOnFork, KeyMode,
	KeyRTRuntimeUS, KeyCPUQuota, KeyExecPolicy}

// Keys lists every annotation key, in the order error messages show them.
var Keys = append(slices.Clone(EnvKeys), tuningKeys...)

// EnvName is the environment variable that stands for an annotation key:
// "rtshim.io/reset-on-fork" -> "RTSHIM_RESET_ON_FORK".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(key, Prefix), "-", "_"))
}

// setting is one value and where it came from: key is the annotation key or environment name
// exactly as the user wrote it, so every error message points at the line to fix.
type setting struct {
	key, value string
	level      int  // levelEnv < levelAliasPod < levelPod < levelAliasContainer < levelContainer: the higher one wins
	alias      bool // a CRI-O annotation (crioAliases)
}

const (
	levelEnv = iota + 1
	levelAliasPod
	levelPod
	levelAliasContainer
	levelContainer
)

// settings maps a canonical key (KeyPolicy...) to the value that won.
type settings map[string]setting

func (s settings) put(canon string, v setting) {
	if old, ok := s[canon]; !ok || v.level > old.level {
		s[canon] = v
	}
}

// peer names another key in the same form as v: when the user wrote RTSHIM_PRIORITY, the
// hint must say RTSHIM_POLICY, not an annotation they may have no means to set.
func (v setting) peer(canon string) string {
	if v.level == levelEnv {
		return EnvName(canon)
	}
	return canon
}

// ParseRequest works out what one container asks for and checks it against the operator's
// rules (nil means DefaultRules()). Sources, strongest first: rtshim.io/<key>.container.<name> annotations,
// rtshim.io/<key> annotations, RTSHIM_<KEY> environment variables, and, only when none of them
// names a policy, the spec's own process.scheduler (taken as a whole).
//
// It returns (nil, nil) when the container is to be left untouched: a CRI sandbox (pause)
// container, or nothing asked at all. Without a policy from any source, priority, nice,
// deadline, reset-on-fork, mode and rt-runtime-us are errors; cpu-quota and exec-policy alone
// are fine and give a SCHED_OTHER Request in apply mode, which only affects exec'd processes.
// In a pod that sets rtshim.io/policy.container.<name> for other containers only, pod-wide
// parameters are ignored for this one rather than errors (see gather).
//
// Every error wraps errdefs.ErrInvalidArgument and names the key, its value and what is allowed.
func ParseRequest(spec *specs.Spec, rules *Rules) (*Request, error) {
	if spec == nil || spec.Annotations[AnnotationContainerType] == ContainerTypeSandbox {
		return nil, nil
	}
	r := DefaultRules()
	if rules != nil {
		var err error
		if r, err = rules.validated(); err != nil {
			return nil, err
		}
	}
	set, err := gather(spec, &r)
	if err != nil {
		return nil, err
	}
	var fromSpec *specs.Scheduler
	if spec.Process != nil {
		fromSpec = spec.Process.Scheduler
	}
	if len(set) == 0 && fromSpec == nil {
		if _, _, ok := specBudget(spec); ok {
			req, err := applySpecBudget(nil, spec, set, &r)
			if err != nil {
				return nil, err
			}
			return req, applyAllocation(req, spec, set, &r)
		}
		if _, allocated := spec.Annotations[KeyAllocation]; allocated && r.Limits.RequireAllocation {
			// An allocation without a policy: the container asked for RT bandwidth but not for
			// a real-time policy, which is most likely a missing annotation.
			return nil, invalid(KeyAllocation, spec.Annotations[KeyAllocation], "the container holds %s but asks for no real-time policy (set %s)",
				ResourceRTBandwidth, KeyPolicy)
		}
		return nil, nil
	}
	req, err := build(set, fromSpec, &r)
	if err != nil {
		return nil, err
	}
	if req, err = applySpecBudget(req, spec, set, &r); err != nil {
		return nil, err
	}
	if err := applyAllocation(req, spec, set, &r); err != nil {
		return nil, err
	}
	if req.Tuning, req.TuningSkipped, err = buildTuning(set, spec, &r); err != nil {
		return nil, err
	}
	return req, nil
}

// gather collects the rtshim settings from the environment and the annotations, each source
// only when the operator honours it. Annotations are visited in sorted order so that, with
// several mistakes, the same one is always reported.
func gather(spec *specs.Spec, cfg *Rules) (settings, error) {
	set := settings{}
	if cfg.Limits.HonorEnv && spec.Process != nil {
		if err := gatherEnv(set, spec.Process.Env); err != nil {
			return nil, err
		}
	}
	if !cfg.Limits.HonorAnnotations {
		return set, nil
	}
	gatherAliases(set, spec.Annotations, spec.Annotations[AnnotationContainerName])
	names := make([]string, 0, len(spec.Annotations))
	for k := range spec.Annotations {
		if strings.HasPrefix(k, Prefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	container := spec.Annotations[AnnotationContainerName]
	policyElsewhere := false
	for _, k := range names {
		v := spec.Annotations[k]
		base, target, perContainer := strings.Cut(k, ContainerInfix)
		if !isKey(base) {
			// A typo is reported even in an override meant for another container: pod
			// annotations reach every container, so it would otherwise never be seen.
			return nil, invalid(k, v, "unknown key; valid keys are %s, each optionally followed by %s<container-name>",
				strings.Join(Keys, ", "), ContainerInfix)
		}
		switch {
		case !perContainer:
			set.put(base, setting{key: k, value: v, level: levelPod})
		case target == "":
			return nil, invalid(k, v, "missing container name after %q", ContainerInfix)
		case container == "":
			// Only CRI names containers (io.kubernetes.cri.container-name): elsewhere the
			// override can never apply, and ignoring it would hide the mistake.
			return nil, invalid(k, v, "targets container %q, but this container is not in a Kubernetes pod "+
				"(it has no %s annotation); use %s", target, AnnotationContainerName, base)
		case target == container:
			set.put(base, setting{key: k, value: v, level: levelContainer})
		case base == KeyPolicy:
			policyElsewhere = true
		}
	}
	if _, own := set[KeyPolicy]; !own && policyElsewhere {
		// The pod gives policies per container, and none to this one: its pod-wide parameters
		// ("rtshim.io/priority: 80" next to "rtshim.io/policy.container.ctl: fifo") are meant
		// for the others, and must not make this container fail for lack of a policy.
		for k, v := range set {
			if v.level == levelPod && (slices.Contains(policyKeys, k) || k == KeyExecPolicy && isRealTime(v.value)) {
				delete(set, k)
			}
		}
	}
	return set, nil
}

func isRealTime(policy string) bool {
	p, ok := parsePolicy(policy)
	return ok && p.RealTime()
}

// gatherEnv reads the RTSHIM_ variables. A name with the prefix that is no key's is an error,
// as an unknown annotation key is: a misspelt RTSHIM_PRIO would otherwise silently not apply.
// If a name repeats, the first one wins, as for getenv(3) and Go's os.Getenv in the container.
func gatherEnv(set settings, env []string) error {
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		k, ok := envKey(name)
		if !ok {
			names := make([]string, len(EnvKeys))
			for i, k := range EnvKeys {
				names[i] = EnvName(k)
			}
			return invalid(name, value, "unknown variable; the RTSHIM_ variables are %s", strings.Join(names, ", "))
		}
		if _, dup := set[k]; !dup {
			set[k] = setting{key: name, value: value, level: levelEnv}
		}
	}
	return nil
}

// envKey is the annotation key an RTSHIM_ variable stands for.
func envKey(name string) (string, bool) {
	for _, k := range EnvKeys {
		if EnvName(k) == name {
			return k, true
		}
	}
	return "", false
}

func isKey(k string) bool {
	for _, known := range Keys {
		if k == known {
			return true
		}
	}
	return false
}

// mayAsk lists what a spec that asks rtshim for anything contains, somewhere: an annotation key
// (rtshim.io/, allocation.rtshim.io/ or a CRI-O alias), an RTSHIM_ variable, its own scheduler or
// RT budget.
var mayAsk = [][]byte{[]byte("rtshim.io/"), []byte("crio.io"), []byte("RTSHIM_"), []byte(`"scheduler"`), []byte(`"realtimeRuntime"`)}

// MayAsk reports whether the raw config.json could hold a request, without decoding it: most
// containers ask for nothing, and decoding a spec runs (and keeps resident in every shim) much
// of encoding/json. JSON can spell a key with escapes ("sch\u0065duler"): a spec with any
// escape sequence is always decoded, so that no key can hide from the limits.
func MayAsk(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) || bytes.Contains(raw, []byte(`\/`)) {
		return true
	}
	for _, s := range mayAsk {
		if bytes.Contains(raw, s) {
			return true
		}
	}
	return false
}
