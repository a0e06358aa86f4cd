package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Rotation period of the K3s token, when a rotation function is configured.
const tokenRotationDays = 90

type secrets struct {
	// Token is the K3s cluster token; the master and every agent read it at boot.
	Token *secretsmanager.Secret
	// Slack holds the incoming-webhook URL SmartScale and Alertmanager post to.
	Slack *secretsmanager.Secret
}

func newSecrets(ctx *pulumi.Context, s settings) (*secrets, error) {
	recovery := 7
	if s.ForceDestroy {
		recovery = 0 // delete at once so the same stack can be brought up again
	}
	token, err := secretsmanager.NewSecret(ctx, "k3s-token", &secretsmanager.SecretArgs{
		Name:                 pulumi.String("smartscale/" + s.ClusterID + "/k3s-token"),
		Description:          pulumi.String("K3s join token of SmartScale cluster " + s.ClusterID),
		RecoveryWindowInDays: pulumi.Int(recovery),
		Tags:                 s.tags("k3s-token"),
	})
	if err != nil {
		return nil, fmt.Errorf("k3s token secret: %w", err)
	}
	// Secrets Manager generates the token. The program asks for a fresh one
	// on every run, but the version ignores later changes: the first value
	// stays until a rotation replaces it, and Pulumi never reverts a rotation.
	pw, err := secretsmanager.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordArgs{
		PasswordLength:     pulumi.IntRef(48),
		ExcludePunctuation: pulumi.BoolRef(true),
	})
	if err != nil {
		return nil, fmt.Errorf("generate k3s token: %w", err)
	}
	if _, err := secretsmanager.NewSecretVersion(ctx, "k3s-token", &secretsmanager.SecretVersionArgs{
		SecretId:     token.ID(),
		SecretString: pulumi.ToSecret(pulumi.String(pw.RandomPassword)).(pulumi.StringOutput),
	}, pulumi.IgnoreChanges([]string{"secretString"})); err != nil {
		return nil, fmt.Errorf("k3s token value: %w", err)
	}
	if s.RotationLambdaARN != "" {
		if _, err := secretsmanager.NewSecretRotation(ctx, "k3s-token", &secretsmanager.SecretRotationArgs{
			SecretId:          token.ID(),
			RotationLambdaArn: pulumi.String(s.RotationLambdaARN),
			RotationRules: &secretsmanager.SecretRotationRotationRulesArgs{
				AutomaticallyAfterDays: pulumi.Int(tokenRotationDays),
			},
		}); err != nil {
			return nil, fmt.Errorf("k3s token rotation: %w", err)
		}
	}

	slack, err := secretsmanager.NewSecret(ctx, "slack-webhook-url", &secretsmanager.SecretArgs{
		Name:                 pulumi.String("smartscale/" + s.ClusterID + "/slack-webhook-url"),
		Description:          pulumi.String("Slack incoming-webhook URL for SmartScale cluster " + s.ClusterID),
		RecoveryWindowInDays: pulumi.Int(recovery),
		Tags:                 s.tags("slack-webhook-url"),
	})
	if err != nil {
		return nil, fmt.Errorf("slack secret: %w", err)
	}
	// Without slackWebhookUrl in the stack config the secret stays empty for
	// the operator to fill (README); the URL never has to pass through Pulumi.
	if s.HasSlackURL {
		if _, err := secretsmanager.NewSecretVersion(ctx, "slack-webhook-url", &secretsmanager.SecretVersionArgs{
			SecretId:     slack.ID(),
			SecretString: s.SlackWebhookURL,
		}); err != nil {
			return nil, fmt.Errorf("slack secret value: %w", err)
		}
	}
	return &secrets{Token: token, Slack: slack}, nil
}
