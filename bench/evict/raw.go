package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// runMeta is what the report says about the run as a whole.
type runMeta struct {
	Date       time.Time     `json:"date"`
	Host       string        `json:"host"`
	CPUs       int           `json:"cpus"`
	Trials     int           `json:"trials"`
	LoadBefore string        `json:"load_before"`
	LoadAfter  string        `json:"load_after"`
	Took       time.Duration `json:"took_ns"`
}

// rawRun is a run's every measurement, as -raw writes it and -render
// reads it back.
type rawRun struct {
	Meta    runMeta     `json:"meta"`
	Results []rawResult `json:"results"`
}

type rawResult struct {
	Jobs       int        `json:"jobs"`
	LoadBefore string     `json:"load_before"`
	LoadAfter  string     `json:"load_after"`
	Trials     []rawTrial `json:"trials"`
	Failures   []string   `json:"failures,omitempty"`
}

type rawTrial struct {
	T0        int64      `json:"t0_ns"`
	TypedNs   int64      `json:"type_cmd_ns"`
	Evictions []eviction `json:"evictions"`
	Restarted []string   `json:"restarted_on"`
}

func writeRaw(path string, meta runMeta, rs []result) error {
	raw := rawRun{Meta: meta}
	for _, r := range rs {
		rr := rawResult{Jobs: r.jobs, LoadBefore: r.loadBefore, LoadAfter: r.loadAfter, Failures: r.failures}
		for _, t := range r.trials {
			rr.Trials = append(rr.Trials, rawTrial{T0: t.t0.UnixNano(), TypedNs: int64(t.typed), Evictions: t.evs, Restarted: t.restarted})
		}
		raw.Results = append(raw.Results, rr)
	}
	b, err := json.MarshalIndent(raw, "", " ")
	if err != nil {
		return fmt.Errorf("encode the raw measurements: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write the raw measurements: %w", err)
	}
	return nil
}

func readRaw(path string) (runMeta, []result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return runMeta{}, nil, fmt.Errorf("read the raw measurements: %w", err)
	}
	var raw rawRun
	if err := json.Unmarshal(b, &raw); err != nil {
		return runMeta{}, nil, fmt.Errorf("raw measurements %s: %w", path, err)
	}
	var rs []result
	for _, rr := range raw.Results {
		r := result{jobs: rr.Jobs, loadBefore: rr.LoadBefore, loadAfter: rr.LoadAfter, failures: rr.Failures}
		for _, t := range rr.Trials {
			r.trials = append(r.trials, trial{t0: time.Unix(0, t.T0), typed: time.Duration(t.TypedNs), evs: t.Evictions, restarted: t.Restarted})
		}
		rs = append(rs, r)
	}
	return raw.Meta, rs, nil
}
