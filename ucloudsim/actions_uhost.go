package ucloudsim

import (
	"slices"

	"github.com/ucloud/ucloud-sdk-go/services/uhost"
)

func (s *Server) describeUHostInstance(c *call) (map[string]any, *apiError) {
	ids, aerr := c.list("UHostIds")
	if aerr != nil {
		return nil, aerr
	}
	// UCloud documents Limit as "default 20, at most 100".
	offset, limit, aerr := c.paging(20, 100)
	if aerr != nil {
		return nil, aerr
	}
	zone, tag, vpc, subnet := c.str("Zone"), c.str("Tag"), c.str("VPCId"), c.str("SubnetId")
	var matched []*Host
	for _, h := range s.w.hosts {
		switch {
		case h.Region != c.region || h.ProjectID != c.project,
			len(ids) > 0 && !slices.Contains(ids, h.ID),
			zone != "" && h.Zone != zone,
			tag != "" && h.Tag != tag,
			vpc != "" && h.VPCID != vpc,
			subnet != "" && h.SubnetID != subnet:
			continue
		}
		matched = append(matched, h)
	}
	lo, hi := page(len(matched), offset, limit)
	set := make([]uhost.UHostInstanceSet, 0, hi-lo)
	for _, h := range matched[lo:hi] {
		if pv := s.stale(hostKey(h.ID)); pv != nil && pv.host != nil {
			set = append(set, *pv.host)
			continue
		}
		set = append(set, s.w.renderHost(h))
	}
	return map[string]any{"UHostSet": set, "TotalCount": len(matched)}, nil
}
