package wrapper

import (
	"github.com/rtshim/rtshim/cgroupfix"
	"github.com/rtshim/rtshim/rtcontainer"
)

// cgroupOwner identifies a process (the container's init) as a claim's owner.
func cgroupOwner(h rtcontainer.Host, pid int) cgroupfix.Owner {
	return cgroupfix.Owner{PID: pid, StartTime: cgroupfix.ProcessStartTime(h.ProcRoot, pid)}
}
