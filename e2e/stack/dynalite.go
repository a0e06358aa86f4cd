package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	server, err := s.writeDynaliteServer(cli)
	if err != nil {
		return err
	}
	var port int
	alloc, err := onePort(&port, func(p int) { s.DynamoEndpoint = "http://" + hostPort(p) })
	if err != nil {
		return err
	}
	var dataDir string
	if s.opts.DynalitePersist {
		if dataDir, err = s.subdir("dynalite"); err != nil {
			return err
		}
	}
	c := &component{
		name: Dynalite,
		cfg: func() (ProcessConfig, error) {
			// node runs the server directly (not npx), so the PID is the server.
			args := []string{server, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
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
	return s.register(ctx, c, alloc)
}

// dynaliteServer runs dynalite's cli.js and survives clients that go away
// in the middle of a request: dynalite 4.0.0 rethrows the request's
// "aborted" / ECONNRESET error from its 'error' handler, which ends the
// process, and crash tests SIGKILL clients on purpose.
const dynaliteServer = `'use strict'
process.on('uncaughtException', function (err) {
  var gone = err && (err.message === 'aborted' || err.code === 'ECONNRESET' || err.code === 'EPIPE')
  if (gone) {
    console.error('dynalite: a client went away mid-request (' + (err.code || err.message) + '); carrying on')
    return
  }
  console.error((err && err.stack) || err)
  process.exit(1)
})
require(%s)
`

func (s *Stack) writeDynaliteServer(cli string) (string, error) {
	quoted, err := json.Marshal(cli)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, "dynalite-server.js")
	if err := os.WriteFile(path, fmt.Appendf(nil, dynaliteServer, quoted), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
