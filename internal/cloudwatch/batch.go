package cloudwatch

import (
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// PutMetricData limits (CloudWatch API reference): at most 1000 metric
// datums and 1 MB per request.
const (
	MaxDatumsPerCall = 1000
	MaxBytesPerCall  = 1_000_000
	// requestOverhead leaves room for the request's own fields (Namespace,
	// up to 255 bytes, and the CBOR framing) within MaxBytesPerCall.
	requestOverhead = 1024
)

// datumSize overestimates a datum's size on the wire. The client encodes
// PutMetricData as CBOR (RPC v2): every field name travels with its value.
// 200 bytes cover the fixed part (MetricName, Dimensions, Timestamp, Unit
// and Value or the four StatisticValues, about 160 bytes with their names);
// each dimension adds its two strings plus 24 bytes of names and headers.
// The wire test checks the estimate against the client's real encoding.
func datumSize(d types.MetricDatum) int {
	n := 200 + len(d.Unit)
	if d.MetricName != nil {
		n += len(*d.MetricName)
	}
	for _, dim := range d.Dimensions {
		n += 24
		if dim.Name != nil {
			n += len(*dim.Name)
		}
		if dim.Value != nil {
			n += len(*dim.Value)
		}
	}
	return n
}

// batches splits datums into PutMetricData calls within both limits,
// keeping their order.
func batches(p []pending, namespace string) [][]pending {
	budget := MaxBytesPerCall - requestOverhead - len(namespace)
	var out [][]pending
	start, size := 0, 0
	for i, d := range p {
		if i > start && (i-start == MaxDatumsPerCall || size+d.size > budget) {
			out = append(out, p[start:i])
			start, size = i, 0
		}
		size += d.size
	}
	if start < len(p) {
		out = append(out, p[start:])
	}
	return out
}
