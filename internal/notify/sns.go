package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Publisher is the part of the SNS client SNS uses.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes each notice to a topic: the title as subject, the notice
// as a JSON body (e-mail subscribers read it; machines parse it).
type SNS struct {
	client   Publisher
	topicARN string
}

// NewSNS publishes to topicARN.
func NewSNS(client Publisher, topicARN string) *SNS { return &SNS{client: client, topicARN: topicARN} }

// Name is the notifier's metric label.
func (s *SNS) Name() string { return "sns" }

// Notify publishes the notice.
func (s *SNS) Notify(ctx context.Context, n Notice) error {
	body, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sns message: %w", err)
	}
	subject := n.Title()
	// SNS subjects: at most 100 printable ASCII characters, no line breaks.
	subject = asciiSubject(subject)
	_, err = s.client.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(s.topicARN),
		Subject:  aws.String(subject),
		Message:  aws.String(string(body)),
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", s.topicARN, err)
	}
	return nil
}

func asciiSubject(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r == '→':
			out = append(out, '-', '>')
		case r >= 0x20 && r < 0x7f:
			out = append(out, r)
		default:
			out = append(out, ' ')
		}
	}
	if len(out) > 100 {
		out = out[:100]
	}
	return string(out)
}
