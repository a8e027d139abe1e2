package idledb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"sprite/wire"
)

// Keys in badger:
//
//	h/<host>               hostRecord: what a host is, and its open idle period
//	p/<host>/<start, u64>  Period: one idle period (End 0 while open)
//	r/<requester>          reqRecord: a requester's demand and the hosts it holds
//
// Heartbeats are not written: only changes of state are.
const maxHistory = 200 // periods kept per host

type hostRecord struct {
	Name      string  `cbor:"1,keyasint"`
	CPUs      float64 `cbor:"2,keyasint"`
	Arch      string  `cbor:"3,keyasint"`
	OpenStart int64   `cbor:"4,keyasint,omitempty"` // unix ms; 0 when not idle
}

type reqRecord struct {
	ID   string   `cbor:"1,keyasint"`
	Host string   `cbor:"2,keyasint"`
	User string   `cbor:"3,keyasint,omitempty"`
	Want int      `cbor:"4,keyasint"`
	Arch string   `cbor:"5,keyasint,omitempty"`
	Held []string `cbor:"6,keyasint,omitempty"`
}

// store writes behind: put, del and trim queue an operation and return;
// one goroutine (owned by the store, ended by close) applies them in order,
// in batches, so the database's lock is never held across disk I/O. Reads
// (history) first wait for the queue to drain, so they see every write
// queued before them.
type store struct {
	db   *badger.DB
	log  *slog.Logger
	ops  chan op
	done chan struct{}

	mu     sync.RWMutex // held (read) while queueing, so close never races a send
	closed bool         // guarded by mu
}

// op is one queued write: set key (val non-nil), delete key, trim host's
// history, or flush (closed when everything before it is applied).
type op struct {
	key, val []byte
	trim     string
	flushed  chan struct{}
}

// openStore opens (or creates) the database in dir; "" keeps it in memory.
// The options keep the footprint small: the database holds a few records
// per host, not bulk data.
func openStore(dir string, log *slog.Logger) (*store, error) {
	opts := badger.DefaultOptions(dir).
		WithInMemory(dir == "").
		WithLogger(badgerLog{log}).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBaseTableSize(1 << 20).
		WithBaseLevelSize(4 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 10).
		WithBlockCacheSize(2 << 20).
		WithIndexCacheSize(1 << 20).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithSyncWrites(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open idle database in %s: %w (is another daemon using it?)", dir, err)
	}
	s := &store{db: db, log: log, ops: make(chan op, 4096), done: make(chan struct{})}
	go s.writer()
	return s, nil
}

func (s *store) close() error {
	s.mu.Lock()
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// queue hands o to the writer; after close it is dropped (a late report
// during shutdown) and reports false.
func (s *store) queue(o op) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.ops <- o
	return true
}

// writer applies queued operations until close; it takes whatever has
// queued up as one batch.
func (s *store) writer() {
	defer close(s.done)
	for o := range s.ops {
		batch := []op{o}
	more:
		for len(batch) < 1024 {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		s.apply(batch)
	}
}

func (s *store) apply(batch []op) {
	wb := s.db.NewWriteBatch()
	for _, o := range batch {
		var err error
		switch {
		case o.flushed != nil:
			if err := wb.Flush(); err != nil {
				s.log.Error("idle database write failed; the changes live in memory only", "err", err)
			}
			close(o.flushed)
			wb = s.db.NewWriteBatch()
		case o.trim != "":
			if err := wb.Flush(); err != nil {
				s.log.Error("idle database write failed; the changes live in memory only", "err", err)
			}
			s.trimNow(o.trim)
			wb = s.db.NewWriteBatch()
		case o.val != nil:
			err = wb.Set(o.key, o.val)
		default:
			err = wb.Delete(o.key)
		}
		if err != nil {
			s.log.Error("idle database write failed; the change lives in memory only", "key", string(o.key), "err", err)
		}
	}
	if err := wb.Flush(); err != nil {
		s.log.Error("idle database write failed; the changes live in memory only", "err", err)
	}
}

// flush waits until every operation queued so far is applied.
func (s *store) flush() {
	ch := make(chan struct{})
	if s.queue(op{flushed: ch}) {
		<-ch
	}
}

func periodKey(host string, start int64) []byte {
	k := []byte("p/" + host + "/")
	return binary.BigEndian.AppendUint64(k, uint64(start))
}

func (s *store) put(key []byte, v any) {
	b, err := wire.Marshal(v)
	if err != nil {
		s.log.Error("idle database record does not encode", "key", string(key), "err", err)
		return
	}
	s.queue(op{key: key, val: b})
}

func (s *store) del(key []byte) { s.queue(op{key: key}) }

// trim queues the removal of a host's oldest periods beyond maxHistory.
func (s *store) trim(host string) { s.queue(op{trim: host}) }

func (s *store) putHost(r hostRecord)         { s.put([]byte("h/"+r.Name), r) }
func (s *store) putReq(r reqRecord)           { s.put([]byte("r/"+r.ID), r) }
func (s *store) delReq(id string)             { s.del([]byte("r/" + id)) }
func (s *store) putPeriod(h string, p Period) { s.put(periodKey(h, p.Start), p) }

// each calls fn with every value under prefix, decoded into a new T.
func each[T any](s *store, prefix string, fn func(key []byte, v T)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(b []byte) error {
				var v T
				if err := wire.Unmarshal(b, &v); err != nil {
					return fmt.Errorf("record %q: %w", item.Key(), err)
				}
				fn(item.KeyCopy(nil), v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// history returns a host's periods, oldest first.
func (s *store) history(host string) ([]Period, error) {
	s.flush()
	var out []Period
	err := each(s, "p/"+host+"/", func(_ []byte, p Period) { out = append(out, p) })
	return out, err
}

// trimNow deletes a host's oldest periods beyond maxHistory (writer only).
func (s *store) trimNow(host string) {
	var keys [][]byte
	each(s, "p/"+host+"/", func(k []byte, _ Period) { keys = append(keys, k) })
	if len(keys) <= maxHistory {
		return
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, k := range keys[:len(keys)-maxHistory] {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, badger.ErrTxnTooBig) {
		s.log.Warn("could not trim idle history", "host", host, "err", err)
	}
}

// badgerLog sends badger's chatter to slog at debug level, its warnings
// and errors at theirs.
type badgerLog struct{ l *slog.Logger }

func (b badgerLog) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLog) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLog) Infof(f string, a ...any) {
	b.l.Debug("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLog) Debugf(f string, a ...any) {}
