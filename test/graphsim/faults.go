package graphsim

import (
	"net/http"
	"strconv"
)

// actFault is an act-then-fail fault chosen for a request before it runs: applied after the handler
// acted, if the request is a write whose answer is below 400.
type actFault struct {
	status int  // replaces the answer
	drop   bool // closes the connection instead
}

func (a actFault) hit() bool { return a.drop || a.status != 0 }

// injectFault answers the request with the next scripted status or a randomly chosen fault, and
// reports whether it did; otherwise it returns the act-then-fail fault drawn for the request (used by
// finishWrite if it is a write). While Script lasts no random fault is drawn. Otherwise every configured
// rate gets exactly one draw from the seeded RNG per Graph request, in a fixed order (DropRate,
// ErrorRate, ThrottleRate, ActThenDropRate, ActThenFailRate), whether or not an earlier one hit and
// whatever the method: the n-th Graph request's fate depends only on the seed and n.
func (s *Server) injectFault(w *trackedWriter, r *http.Request) (bool, actFault) {
	s.mu.Lock()
	f := s.faults
	status, drop := 0, false
	var act actFault
	if len(s.script) > 0 {
		status, s.script = s.script[0], s.script[1:]
	} else {
		draw := func(rate float64) bool { return rate > 0 && s.faultRNG.Float64() < rate }
		dropHit, errorHit, throttleHit := draw(f.DropRate), draw(f.ErrorRate), draw(f.ThrottleRate)
		actDropHit, actFailHit := draw(f.ActThenDropRate), draw(f.ActThenFailRate)
		switch {
		case dropHit:
			drop = true
		case errorHit:
			status = f.ErrorStatus
		case throttleHit:
			status = http.StatusTooManyRequests
		case actDropHit:
			act.drop = true
		case actFailHit:
			act.status = f.ActThenFailStatus
		}
	}
	s.mu.Unlock()

	if drop {
		if dropConnection(w) {
			return true, actFault{}
		}
		status = http.StatusServiceUnavailable // cannot drop: fail loudly instead
	}
	if status == 0 { // also a Script entry of 0: answer this request normally
		return false, act
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", f.RedirectTo+r.URL.RequestURI())
		w.WriteHeader(status)
		return true, actFault{}
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(f.RetryAfter)))
	}
	c := &call{s: s, w: w, r: r}
	c.graphError(status, faultCode(status), "Injected fault: "+http.StatusText(status)+".")
	return true, actFault{}
}

// dropConnection closes the request's connection without an answer; false if it cannot.
func dropConnection(w *trackedWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	conn.Close()
	w.hijacked = true
	return true
}

// finishWrite sends a write's held answer, or, when the write acted (answer below 400) and an
// act-then-fail fault applies, replaces it: the next ActThenFailScript entry first, else the fault
// drawn for the request.
func (s *Server) finishWrite(c *call, drawn actFault) {
	w := c.w
	acted := w.heldStatus
	if acted == 0 {
		acted = http.StatusOK
	}
	if acted >= 400 {
		w.release()
		return
	}
	act := drawn
	s.mu.Lock()
	if len(s.actScript) > 0 {
		var next int
		next, s.actScript = s.actScript[0], s.actScript[1:]
		act = actFault{status: next, drop: next == DropConnection}
		if act.drop {
			act.status = 0
		}
	}
	s.mu.Unlock()
	if !act.hit() {
		w.release()
		return
	}
	w.hold = false
	w.actedStatus = acted
	if act.drop && dropConnection(w) {
		return
	}
	status := act.status
	if status == 0 || act.drop { // could not drop: fail loudly instead
		status = http.StatusServiceUnavailable
	}
	c.graphError(status, faultCode(status), "Injected fault after the write took effect: "+http.StatusText(status)+".")
}

// faultCode is Graph's error code for the statuses faults produce.
func faultCode(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "GatewayTimeout"
	case http.StatusInternalServerError:
		return "InternalServerError"
	case http.StatusBadGateway:
		return "BadGateway"
	}
	return "UnknownError"
}
