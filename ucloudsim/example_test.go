package ucloudsim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
	"github.com/ucloud/ucloud-sdk-go/ucloud"
	"github.com/ucloud/ucloud-sdk-go/ucloud/auth"
	sdklog "github.com/ucloud/ucloud-sdk-go/ucloud/log"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// The simulator as a test of the driver uses it: seed, start, point the real
// SDK at URL(), act, then assert on the snapshot and the metadata.
func Example() {
	srv, err := ucloudsim.New(ucloudsim.Config{State: &ucloudsim.State{
		Region:    "cn-bj2",
		ProjectID: "org-demo",
		Keypairs:  []ucloudsim.Keypair{{PublicKey: "pub", PrivateKey: "priv"}},
		Hosts:     []ucloudsim.Host{{ID: "uhost-1", PrivateIP: "10.9.0.11"}},
		EIPs:      []ucloudsim.EIP{{ID: "eip-1", IP: "203.0.113.10"}},
	}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer srv.Close()

	cfg := ucloud.NewConfig()
	cfg.BaseUrl, cfg.Region, cfg.ProjectId = srv.URL(), "cn-bj2", "org-demo"
	cfg.LogLevel = sdklog.PanicLevel
	cred := auth.NewCredential()
	cred.PublicKey, cred.PrivateKey = "pub", "priv"
	client := unet.NewClient(&cfg, &cred)

	req := client.NewBindEIPRequest()
	req.EIPId, req.ResourceType, req.ResourceId = ucloud.String("eip-1"), ucloud.String("uhost"), ucloud.String("uhost-1")
	if _, err := client.BindEIP(req); err != nil {
		panic(err)
	}
	eip, _ := srv.Snapshot().EIP("eip-1")
	fmt.Println(eip.Status, eip.ResourceID)

	resp, err := http.Get(srv.MetadataURL("uhost-1") + "/meta-data/latest/uhost/uhost-id")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	id, _ := io.ReadAll(resp.Body)
	fmt.Println(string(id))
	fmt.Println(srv.Counters()["BindEIP"].Succeeded)
	// Output:
	// used uhost-1
	// uhost-1
	// 1
}
