package ucloudsim

import (
	"fmt"
	"slices"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

// errFirewallNotFound is UCloud's answer for a firewall that does not exist
// (RetCode 54002, "Resource [...] not exist", seen from UpdateFirewall in
// UCloudDoc-Team/api issue 586; the Terraform provider reads it as
// not-found from DescribeFirewall).
func errFirewallNotFound(id string) *apiError {
	return errf(RetCodeFirewallNotFound, "Resource [%s] not exist", id)
}

// firewallResourceTypes are DescribeFirewall's ResourceType values
// (unet.DescribeFirewallRequest).
func firewallResourceTypes() []string {
	return []string{"unatgw", "uhost", "upm", "hadoophost", "fortresshost", "udhost", "udockhost", "dbaudit", "uni", "cube", "ulb"}
}

// describeFirewall answers for an account without firewalls (the simulator
// models none): a firewall id is not found (54002), the firewall of a
// resource and the list of all are empty. The Terraform provider's
// describeFirewallByIdAndType reads both an empty DataSet and 54002 as "no
// firewall".
func (s *Server) describeFirewall(c *call) (map[string]any, *apiError) {
	if _, _, aerr := c.paging(20, 10000000); aerr != nil {
		return nil, aerr
	}
	rtype, rid := c.str("ResourceType"), c.str("ResourceId")
	if rtype != "" {
		if !slices.Contains(firewallResourceTypes(), rtype) {
			return nil, errParamWhy("ResourceType", fmt.Sprintf("one of %v", firewallResourceTypes()))
		}
	}
	if rid != "" && rtype == "" {
		return nil, errParamWhy("ResourceType", "required with ResourceId")
	}
	if fw := c.str("FWId"); fw != "" {
		return nil, errFirewallNotFound(fw)
	}
	return map[string]any{"DataSet": []unet.FirewallDataSet{}, "TotalCount": 0}, nil
}
