package driver

import (
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

type ctyValue = cty.Value

func hcldecImpliedType(s hcldec.Spec) cty.Type { return hcldec.ImpliedType(s) }
