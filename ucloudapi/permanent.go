package ucloudapi

import "errors"

// Error kinds the binders (eipbind, ulbbind) wrap; all are permanent.
var (
	// ErrRefused: the resource is outside the tenancy guard, or held by
	// someone else with no proof that the hold is stale.
	ErrRefused = errors.New("refused")
	// ErrNotOwner: another allocation owns the resource now.
	ErrNotOwner = errors.New("not the owner")
	// ErrUnusable: the resource does not exist, is frozen, or the request
	// is invalid.
	ErrUnusable = errors.New("unusable")
	// ErrCASLost: someone wrote the owner record between our read and
	// our write; read again and decide again.
	ErrCASLost = errors.New("owner record changed while claiming it")
)

// PermanentError marks an error that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent (nil stays nil).
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether retrying the operation later cannot help
// without someone changing something (the resource, the guard, the job).
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Transient strips the permanent mark from err: for an error that only
// looks permanent because the operation's deadline cut a call short.
func Transient(err error) error {
	var p *PermanentError
	if errors.As(err, &p) && !errors.Is(err, ErrRefused) && !errors.Is(err, ErrUnusable) && !errors.Is(err, ErrNotOwner) {
		return p.Err
	}
	return err
}
