package stack

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoClient returns an aws-sdk-go-v2 DynamoDB client for dynalite
// (region us-east-1, static credentials x/x).
func (s *Stack) DynamoClient() *dynamodb.Client {
	return DynamoClient(s.DynamoEndpoint)
}

// DynamoClient returns a DynamoDB client for endpoint with the region and
// static credentials dynalite accepts (it checks neither).
func DynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
		// Readiness polls and tests want a refused connection reported at
		// once, not after the SDK's retries.
		RetryMaxAttempts: 1,
	})
}

func (s *Stack) addDynalite(ctx context.Context) error {
	cli, err := ToolPath("dynalite")
	if err != nil {
		return err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("dynalite needs node: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	setPort := func(p int) {
		port = p
		s.DynamoEndpoint = "http://" + hostPort(p)
	}
	setPort(port)
	var dataDir string
	if s.opts.DynalitePersist {
		if dataDir, err = s.subdir("dynalite"); err != nil {
			return err
		}
	}
	c := &component{
		name: Dynalite,
		cfg: func() (ProcessConfig, error) {
			// node runs cli.js directly (not npx), so the PID is the server.
			args := []string{cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
				"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"}
			if dataDir != "" {
				args = append(args, "--path", dataDir)
			}
			return ProcessConfig{Name: string(Dynalite), Path: node, Args: args, LogPath: s.logFile(Dynalite)}, nil
		},
		ready: func(ctx context.Context) error {
			_, err := DynamoClient(s.DynamoEndpoint).ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		},
	}
	return s.register(ctx, c, func() error {
		p, err := freePorts(1)
		if err != nil {
			return err
		}
		setPort(p[0])
		return nil
	})
}
