package cgroupfix

// The kernel compares RT bandwidth as fixed-point ratios runtime/period with 20 fraction bits
// (to_ratio() in kernel/sched/core.c, BW_SHIFT). Doing the same arithmetic here means a budget
// rtshim computes is exactly one the kernel accepts, whatever the groups' periods are.
const (
	bwShift = 20
	bwUnit  = int64(1) << bwShift
)

// toRatio is the kernel's to_ratio(); runtime -1 is RUNTIME_INF.
func toRatio(periodUS, runtimeUS int64) int64 {
	if runtimeUS < 0 {
		return bwUnit
	}
	if periodUS <= 0 {
		return 0
	}
	return (runtimeUS << bwShift) / periodUS
}

// runtimeFor is the smallest runtime (µs) whose ratio over periodUS is at least ratio.
func runtimeFor(ratio, periodUS int64) int64 {
	if ratio <= 0 {
		return 0
	}
	return (ratio*periodUS + bwUnit - 1) >> bwShift
}
