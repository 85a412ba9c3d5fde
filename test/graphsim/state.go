package graphsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFile is what Config.StateFile holds: the emulator's keys (so a restarted emulator is still
// trusted and accepts tokens it issued), the RNG positions (so new ids do not repeat old ones) and
// every tenant's records. It contains secrets; it is written 0600.
type stateFile struct {
	Keys     keysFile                 `json:"keys"`
	IDRNG    []byte                   `json:"idRng"`
	FaultRNG []byte                   `json:"faultRng"`
	Tenants  map[string]tenantRecords `json:"tenants"`
}

type tenantRecords struct {
	UserPfxCertificates            []UserPFXCertificate            `json:"userPfxCertificates,omitempty"`
	DeviceConfigurations           []DeviceConfiguration           `json:"deviceConfigurations,omitempty"`
	ManagedDeviceCertificateStates []ManagedDeviceCertificateState `json:"managedDeviceCertificateStates,omitempty"`
	PfxRecryptionRequests          []PfxRecryptionRequest          `json:"pfxRecryptionRequests,omitempty"`
	PfxUserCertificates            []PfxUserCertificate            `json:"pfxUserCertificates,omitempty"`
}

// loadState restores the state file if configured and present. Tenants no longer configured are dropped.
func (s *Server) loadState() (bool, error) {
	if s.cfg.StateFile == "" {
		return false, nil
	}
	data, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("graphsim: read state file: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return false, fmt.Errorf("graphsim: parse state file %s: %w", s.cfg.StateFile, err)
	}
	if s.keys, err = st.Keys.toKeys(); err != nil {
		return false, err
	}
	if err := s.idSrc.UnmarshalBinary(st.IDRNG); err != nil {
		return false, fmt.Errorf("graphsim: restore id RNG: %w", err)
	}
	if err := s.faultSrc.UnmarshalBinary(st.FaultRNG); err != nil {
		return false, fmt.Errorf("graphsim: restore fault RNG: %w", err)
	}
	for id, recs := range st.Tenants {
		ts := s.tenants[id]
		if ts == nil {
			continue
		}
		for _, dc := range recs.DeviceConfigurations {
			ts.addConfig(dc)
		}
		for _, r := range recs.UserPfxCertificates {
			ts.userPfx[key(r.ID)] = &r
		}
		for _, r := range recs.ManagedDeviceCertificateStates {
			ts.states[key(r.ID)] = &r
		}
		for _, r := range recs.PfxRecryptionRequests {
			ts.recryption[key(r.ID)] = &r
		}
		for _, r := range recs.PfxUserCertificates {
			ts.pfxUser[key(r.ID)] = &r
		}
	}
	return true, nil
}

// saveStateLocked writes the state file atomically (temp file + rename); s.mu must be held.
func (s *Server) saveStateLocked() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	st := stateFile{Tenants: map[string]tenantRecords{}}
	var err error
	if st.Keys, err = s.keys.toFile(); err != nil {
		return err
	}
	if st.IDRNG, err = s.idSrc.MarshalBinary(); err != nil {
		return fmt.Errorf("graphsim: save id RNG: %w", err)
	}
	if st.FaultRNG, err = s.faultSrc.MarshalBinary(); err != nil {
		return fmt.Errorf("graphsim: save fault RNG: %w", err)
	}
	for id, ts := range s.tenants {
		st.Tenants[id] = ts.records()
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("graphsim: encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.cfg.StateFile), ".graphsim-state-*")
	if err != nil {
		return fmt.Errorf("graphsim: write state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("graphsim: write state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("graphsim: write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.cfg.StateFile); err != nil {
		return fmt.Errorf("graphsim: write state file: %w", err)
	}
	return nil
}

// records copies a tenant's records (with secrets), ordered by id.
func (ts *tenantState) records() tenantRecords {
	recs := tenantRecords{
		UserPfxCertificates:            sortedValues(ts.userPfx),
		ManagedDeviceCertificateStates: sortedValues(ts.states),
		PfxRecryptionRequests:          sortedValues(ts.recryption),
		PfxUserCertificates:            sortedValues(ts.pfxUser),
		DeviceConfigurations:           sortedValues(pointers(ts.configs)),
	}
	return recs
}

func pointers[T any](m map[string]T) map[string]*T {
	out := make(map[string]*T, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}
