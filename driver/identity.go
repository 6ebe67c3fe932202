package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ucloud/ucloud-sdk-go/ucloud/metadata"
)

// defaultMetadataEndpoint is UCloud's instance metadata service.
const defaultMetadataEndpoint = "http://100.80.80.80"

// Identity is which UHost this Nomad client runs on.
type Identity struct {
	UHostID   string
	PrivateIP string
	Region    string
	ProjectID string
}

// fetchIdentity reads the instance metadata document
// ({endpoint}/meta-data/v1.json) the way UCloud serves it on every UHost.
func fetchIdentity(ctx context.Context, endpoint string) (Identity, error) {
	if endpoint == "" {
		endpoint = defaultMetadataEndpoint
	}
	url := strings.TrimRight(endpoint, "/") + "/meta-data/v1.json"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Identity{}, fmt.Errorf("failed to build metadata request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("failed to read instance metadata from %s: %w (set ucloud.uhost_id and ucloud.private_ip when the metadata service is unreachable)", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Identity{}, fmt.Errorf("failed to read instance metadata from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Identity{}, fmt.Errorf("failed to read instance metadata from %s: HTTP %d", url, resp.StatusCode)
	}
	var md metadata.Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return Identity{}, fmt.Errorf("failed to decode instance metadata from %s: %w", url, err)
	}
	id := Identity{UHostID: md.UHost.UHostId, Region: md.Region, ProjectID: md.UHost.ProjectId}
	if id.UHostID == "" {
		id.UHostID = md.InstanceId
	}
	for _, ifc := range md.UHost.NetworkInterfaces {
		for _, ip := range ifc.IPs {
			if strings.EqualFold(ip.Type, "Private") && net.ParseIP(ip.IPAddress) != nil {
				id.PrivateIP = ip.IPAddress
				break
			}
		}
		if id.PrivateIP != "" {
			break
		}
	}
	if id.UHostID == "" || id.PrivateIP == "" {
		return id, fmt.Errorf("instance metadata from %s has no uhost id or private IP", url)
	}
	return id, nil
}
