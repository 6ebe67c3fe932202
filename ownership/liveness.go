package ownership

import (
	"context"
	"fmt"
	"time"
)

// Liveness tells whether the allocation an owner record names has ended for
// good. The driver answers it from the Nomad API (package nomadstate): an
// allocation is gone when its client status is complete, failed or lost, or
// when Nomad no longer knows it. A running, pending or disconnected
// ("unknown") allocation is alive: its binding is never taken.
type Liveness interface {
	// Gone reports whether o's allocation has ended; why says what was
	// seen ("allocation a1 is lost", "allocation a1 is running"). An
	// error means liveness could not be learned: callers treat the owner
	// as alive and try again later.
	Gone(ctx context.Context, o Owner) (gone bool, why string, err error)
}

// LivenessFunc adapts a function to Liveness.
type LivenessFunc func(ctx context.Context, o Owner) (bool, string, error)

// Gone calls f.
func (f LivenessFunc) Gone(ctx context.Context, o Owner) (bool, string, error) { return f(ctx, o) }

// Held reports whether rec's owner still holds its resource at now, so that
// another allocation must wait instead of taking it: while it is releasing
// (ReleasingUntil not passed), or while its allocation is alive. With a nil
// Liveness only the releasing mark counts (a record of another allocation
// of the same slot is then taken as stale, as before liveness existed).
func Held(ctx context.Context, l Liveness, rec Owner, now time.Time) (bool, string, error) {
	if rec.Releasing(now) {
		return true, fmt.Sprintf("allocation %s is releasing it (until %s)", rec.AllocID, rec.ReleasingUntil.UTC().Format(time.RFC3339)), nil
	}
	if l == nil {
		return false, "", nil
	}
	gone, why, err := l.Gone(ctx, rec)
	if err != nil {
		return true, "", fmt.Errorf("learn whether allocation %s (slot %s) has ended: %w", rec.AllocID, rec.Slot(), err)
	}
	return !gone, why, nil
}

// Claimer writes owner records with check-and-set; *Store has it.
type Claimer interface {
	Claim(ctx context.Context, kind, key string, o Owner, prevIndex uint64) (bool, error)
}

// MarkReleasing writes rec back, at idx, marked as releasing until until
// (see docs/binding.md, "Releasing"): from then on every other binder waits
// for the record to go or the mark to expire. ok is false when the record
// changed since it was read (re-read and decide again).
func MarkReleasing(ctx context.Context, c Claimer, kind, key string, rec Owner, idx uint64, until time.Time) (bool, error) {
	until = until.UTC()
	rec.ReleasingUntil, rec.UpdatedAt = &until, time.Time{}
	return c.Claim(ctx, kind, key, rec, idx)
}
