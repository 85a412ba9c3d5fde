package graphsim

import (
	"net/http"
	"strconv"
)

// injectFault answers the request with the next scripted status or a randomly chosen fault, and
// reports whether it did. Random choices use the seeded RNG with one draw per configured rate, in a
// fixed order, so a seed always gives the same sequence for the same requests.
func (s *Server) injectFault(w *trackedWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.faults
	status, drop := 0, false
	if len(s.script) > 0 {
		status, s.script = s.script[0], s.script[1:]
	} else {
		switch {
		case f.DropRate > 0 && s.faultRNG.Float64() < f.DropRate:
			drop = true
		case f.ErrorRate > 0 && s.faultRNG.Float64() < f.ErrorRate:
			status = f.ErrorStatus
		case f.ThrottleRate > 0 && s.faultRNG.Float64() < f.ThrottleRate:
			status = http.StatusTooManyRequests
		}
	}
	s.mu.Unlock()

	if drop {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			w.hijacked = true
			return true
		}
		status = http.StatusServiceUnavailable // cannot drop: fail loudly instead
	}
	if status == 0 { // also a Script entry of 0: answer this request normally
		return false
	}
	if status >= 300 && status < 400 {
		w.Header().Set("Location", f.RedirectTo+r.URL.RequestURI())
		w.WriteHeader(status)
		return true
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(f.RetryAfter)))
	}
	c := &call{s: s, w: w, r: r}
	c.graphError(status, faultCode(status), "Injected fault: "+http.StatusText(status)+".")
	return true
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
