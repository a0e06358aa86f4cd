package dynamo

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of the table (ARCHITECTURE.md, "DynamoDB state").
const (
	attrPK         = "pk"
	attrSK         = "sk"
	attrOwner      = "owner"
	attrLockExpiry = "lock_expiry"
	attrVersion    = "version"
	attrGroup      = "nodegroup"
	attrNodeCount  = "node_count"
	attrLastUp     = "last_scale_up_at"
	attrLastDown   = "last_scale_down_at"
	attrExpiresAt  = "expires_at"
	attrID         = "id"
	attrKind       = "kind"
	attrStep       = "step"
	attrNode       = "node"
	attrInstances  = "instances"
	attrCount      = "count"
	attrZones      = "zones"
	attrDetail     = "detail"
	attrStarted    = "started"
	attrUpdated    = "updated"
	attrFinished   = "finished"
	attrResult     = "result"
	attrRecord     = "record"
)

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// epoch writes t as epoch seconds with milliseconds ("1767225600.250"):
// seconds as the table's model says, precise enough for sub-second leases,
// and compared numerically by DynamoDB conditions.
func epoch(t time.Time) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}
}

func strList(v []string) *types.AttributeValueMemberL {
	l := make([]types.AttributeValue, len(v))
	for i, s := range v {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func strMap(m map[string]string) *types.AttributeValueMemberM {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = str(v)
	}
	return &types.AttributeValueMemberM{Value: out}
}

// item reads attributes of one stored item; the first malformed attribute
// is kept in err.
type item struct {
	m   map[string]types.AttributeValue
	err error
}

func (it *item) str(name string) string {
	switch v := it.m[name].(type) {
	case nil:
		return ""
	case *types.AttributeValueMemberS:
		return v.Value
	default:
		it.fail(name, "string")
		return ""
	}
}

func (it *item) number(name string) float64 {
	switch v := it.m[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			it.fail(name, "number")
		}
		return f
	default:
		it.fail(name, "number")
		return 0
	}
}

func (it *item) int(name string) int64 { return int64(it.number(name)) }

func (it *item) time(name string) time.Time {
	if _, ok := it.m[name]; !ok {
		return time.Time{}
	}
	return time.UnixMilli(int64(math.Round(it.number(name) * 1000))).UTC()
}

func (it *item) list(name string) []string {
	switch v := it.m[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberL:
		if len(v.Value) == 0 {
			return nil
		}
		out := make([]string, 0, len(v.Value))
		for _, e := range v.Value {
			s, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				it.fail(name, "list of strings")
				return nil
			}
			out = append(out, s.Value)
		}
		return out
	default:
		it.fail(name, "list")
		return nil
	}
}

func (it *item) strMap(name string) map[string]string {
	switch v := it.m[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberM:
		if len(v.Value) == 0 {
			return nil
		}
		out := make(map[string]string, len(v.Value))
		for k, e := range v.Value {
			s, ok := e.(*types.AttributeValueMemberS)
			if !ok {
				it.fail(name, "map of strings")
				return nil
			}
			out[k] = s.Value
		}
		return out
	default:
		it.fail(name, "map")
		return nil
	}
}

func (it *item) fail(name, want string) {
	if it.err == nil {
		sk, _ := it.m[attrSK].(*types.AttributeValueMemberS)
		key := "?"
		if sk != nil {
			key = sk.Value
		}
		it.err = fmt.Errorf("attribute %s of %s: want a %s", name, key, want)
	}
}
