package ucloudsim

import "fmt"

// RetCodes the simulator answers with. Where each one comes from, and how sure
// we are of it, is in the fidelity table of the package documentation and of
// docs/ucloudsim.md. Callers should compare against these constants rather than
// literals, so that a corrected code is corrected everywhere.
const (
	// RetCodeOK is success.
	RetCodeOK = 0
	// RetCodeServiceUnavailable is UCloud's generic "Service unavailable";
	// the simulator only answers it when a fault rule asks for it.
	RetCodeServiceUnavailable = 150
	// RetCodeRateLimited: the account's API calls are throttled ("API 请求被
	// 限流" in UCloud's common error codes); only with Faults.RateLimit.
	RetCodeRateLimited = 153
	// RetCodeMissingAction: the request has no Action.
	RetCodeMissingAction = 160
	// RetCodeActionNotFound: the Action is not one the simulator serves.
	RetCodeActionNotFound = 161
	// RetCodeMissingSignature: no Signature or no PublicKey parameter.
	RetCodeMissingSignature = 170
	// RetCodeSignatureError: the signature does not match ("Signature VerifyAC Error").
	RetCodeSignatureError = 171
	// RetCodeUserNotExists: the PublicKey is not a configured keypair.
	RetCodeUserNotExists = 172
	// RetCodeParamsNotAvailable: a parameter is missing, malformed or refers to
	// a resource that does not exist ("Params [X] not available").
	RetCodeParamsNotAvailable = 230
	// RetCodeProjectNotExists: the ProjectId is not a project of the account.
	RetCodeProjectNotExists = 292
	// RetCodeULBNotFound: the ULB, VServer or backend does not exist (in the
	// request's region and project).
	RetCodeULBNotFound = 4103
	// RetCodeFirewallNotFound: the firewall (security group) does not exist.
	// The simulator models no firewalls, so every FWId gets it.
	RetCodeFirewallNotFound = 54002
	// RetCodeEIPOperationFailed: an EIP does not exist, or its state does not
	// allow the operation (bound elsewhere, not bound, still bound on release).
	RetCodeEIPOperationFailed = 8039
)

// apiError is a UCloud API error: the RetCode and Message of the reply.
type apiError struct {
	Code    int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("retcode %d: %s", e.Code, e.Message)
}

func errf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// errParam is UCloud's answer for a missing or unusable parameter.
func errParam(name string) *apiError {
	return errf(RetCodeParamsNotAvailable, "Params [%s] not available", name)
}

// errParamWhy is errParam with the reason appended, for the simulator's users.
func errParamWhy(name, why string) *apiError {
	return errf(RetCodeParamsNotAvailable, "Params [%s] not available: %s", name, why)
}
