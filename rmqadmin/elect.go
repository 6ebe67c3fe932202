package rmqadmin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The controllers' admin election (CONTROLLER_ELECT_MASTER, what
// `mqadmin electMaster` sends): make a named replica of a group its master.
// RocketMQ 5.3.3: RequestCode.CONTROLLER_ELECT_MASTER,
// ElectMasterRequestHeader.ofAdminTrigger, ElectMasterResponseHeader,
// ReplicasInfoManager.electMaster, DefaultElectPolicy.

const reqControllerElectMaster = 1002 // controller: ControllerRequestProcessor.handleControllerElectMaster

// Response codes of an election (ResponseCode).
const (
	// CodeControllerBrokerNeedToBeRegistered: the controllers know no
	// replica of the broker name.
	CodeControllerBrokerNeedToBeRegistered = 2010
	// CodeControllerMasterStillExist: the election would keep the
	// current master; nothing changed.
	CodeControllerMasterStillExist = 2011
	// CodeControllerElectMasterFailed: the designated replica cannot be
	// master (not alive, or not in the SyncStateSet while unclean
	// elections are off); nothing changed.
	CodeControllerElectMasterFailed = 2012
)

// Elected is the controllers' answer to an election: the group's master
// after it (ElectMasterResponseHeader, sent as header fields).
type Elected struct {
	MasterBrokerID    int64
	MasterAddress     string
	MasterEpoch       int
	SyncStateSetEpoch int
}

// ElectMaster asks one controller to make replica brokerID of brokerName
// the group's master (an admin election: designateElect, so the
// controllers take this replica or none). Only the DLedger leader
// decides; the others answer CodeControllerNotLeader. The controllers
// elect only an alive replica of the SyncStateSet (with
// enableElectUncleanMaster=false), commit the new master through their
// Raft log before they answer, and then tell the group's brokers
// (NOTIFY_BROKER_ROLE_CHANGED): the new master changes to master, the
// old one to slave.
func ElectMaster(ctx context.Context, controller, cluster, brokerName string, brokerID int64) (Elected, error) {
	ext := map[string]string{
		"clusterName":    cluster,
		"brokerName":     brokerName,
		"brokerId":       strconv.FormatInt(brokerID, 10),
		"designateElect": "true",
		"invokeTime":     strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	resp, err := Invoke(ctx, controller, reqControllerElectMaster, ext, nil)
	var el Elected
	if resp != nil {
		f := resp.ExtFields
		el.MasterBrokerID, _ = strconv.ParseInt(f["masterBrokerId"], 10, 64)
		el.MasterAddress = f["masterAddress"]
		el.MasterEpoch, _ = strconv.Atoi(f["masterEpoch"])
		el.SyncStateSetEpoch, _ = strconv.Atoi(f["syncStateSetEpoch"])
	}
	if err != nil {
		return el, fmt.Errorf("controller %s: elect broker id %d of %s: %w", controller, brokerID, brokerName, err)
	}
	return el, nil
}

// ElectMasterFrom sends the election to the controllers, first first (the
// one that answered last time), then the others in order, each within
// perCall, until one is the leader. A leader's refusal (any code but
// CodeControllerNotLeader) is final and returned as it is: the election
// is not retried elsewhere. It returns the controller that answered.
func ElectMasterFrom(ctx context.Context, controllers []string, first, cluster, brokerName string, brokerID int64, perCall time.Duration) (Elected, string, error) {
	// A refusal from the leader (anything but "not leader") is final.
	refused := func(err error) bool {
		var re *Error
		return errors.As(err, &re) && re.Code != CodeControllerNotLeader
	}
	el, from, errs := inTurn(ctx, controllers, first, perCall, func(cctx context.Context, c string) (Elected, error) {
		return ElectMaster(cctx, c, cluster, brokerName, brokerID)
	}, refused)
	if from != "" {
		var err error
		if len(errs) > 0 {
			err = errs[len(errs)-1] // the leader's refusal
		}
		return el, from, err
	}
	return Elected{}, "", fmt.Errorf("no leader among the controllers %v for the election of broker id %d of %s: %w", controllers, brokerID, brokerName, errors.Join(errs...))
}

// inTurn makes one call to each controller in turn, first named first,
// each within perCall, until one answers: only the DLedger leader does. It
// returns that answer and its controller; an error for which final says
// true ends the turn too, with that controller and the errors so far
// (that one last). With no answer, from is "" and errs holds every error.
func inTurn[T any](ctx context.Context, controllers []string, first string, perCall time.Duration,
	call func(context.Context, string) (T, error), final func(error) bool) (answer T, from string, errs []error) {
	for _, c := range controllerOrder(controllers, first) {
		cctx, cancel := context.WithTimeout(ctx, perCall)
		v, err := call(cctx, c)
		cancel()
		if err == nil {
			return v, c, nil
		}
		errs = append(errs, err)
		if final(err) {
			return v, c, errs
		}
		if ctx.Err() != nil {
			break
		}
	}
	var zero T
	return zero, "", errs
}

// controllerOrder is first, then the other controllers in their order.
func controllerOrder(controllers []string, first string) []string {
	order := make([]string, 0, len(controllers)+1)
	if first != "" {
		order = append(order, first)
	}
	for _, c := range controllers {
		if c != first {
			order = append(order, c)
		}
	}
	return order
}
