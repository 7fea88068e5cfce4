package cxone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Position is how far the adapter has emitted. It moves only after Emit returned nil
// for every contact before it.
type Position struct {
	// Window is the start of the first backfill window not yet fully emitted: every
	// contact of the windows before it has been emitted.
	Window time.Time `json:"window,omitzero"`
	// WindowEnd is the end of that window, while Skip > 0.
	WindowEnd time.Time `json:"windowEnd,omitzero"`
	// Skip counts the contacts of the window already emitted, in the order requested.
	Skip int `json:"skip,omitempty"`
	// Total is the window's totalRecords when Skip was recorded. A resumed backfill
	// continues at Skip only if the window still has Total contacts; otherwise it reads
	// the window again from its start (re-emitting, which deduplicates, rather than
	// losing a contact that moved).
	Total int64 `json:"total,omitempty"`
	// UpdatedSince is the lastPollTime of the last incremental pass fully emitted: the
	// updatedSince of the next one.
	UpdatedSince time.Time `json:"updatedSince,omitzero"`
}

// Watermark persists the Position, so a restart neither loses contacts nor starts
// over.
type Watermark interface {
	// Load returns the saved position, or the zero Position when none was saved.
	Load(ctx context.Context) (Position, error)
	// Save replaces the saved position durably before it returns.
	Save(ctx context.Context, p Position) error
}

// FileWatermark keeps the position in a JSON file, replaced atomically: written to a
// temporary file in the same directory, synced, renamed over the old one, and the
// directory synced. A crash leaves the old position or the new one, never a mix.
type FileWatermark struct {
	path string
}

// NewFileWatermark returns a watermark kept at path. The file is created (mode 0600)
// at the first Save.
func NewFileWatermark(path string) *FileWatermark { return &FileWatermark{path: path} }

// Load reads the file; a missing file is the zero Position. Unknown keys are errors.
func (w *FileWatermark) Load(context.Context) (Position, error) {
	b, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("cxone: watermark: %w", err)
	}
	var p Position
	if err := jsonv2.Unmarshal(b, &p, jsonv2.RejectUnknownMembers(true)); err != nil {
		return Position{}, fmt.Errorf("cxone: watermark %s: %w", w.path, err)
	}
	if p.Skip < 0 || p.Total < 0 {
		return Position{}, fmt.Errorf("cxone: watermark %s: skip and total must not be negative", w.path)
	}
	return p, nil
}

// Save writes the position atomically and durably.
func (w *FileWatermark) Save(_ context.Context, p Position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(w.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(w.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	if err := os.Rename(tmp, w.path); err != nil {
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cxone: watermark: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cxone: watermark: sync directory: %w", err)
	}
	return nil
}

// memWatermark keeps the position in memory (Config.Watermark nil).
type memWatermark struct {
	mu sync.Mutex
	p  Position
}

func (m *memWatermark) Load(context.Context) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p, nil
}

func (m *memWatermark) Save(_ context.Context, p Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = p
	return nil
}
