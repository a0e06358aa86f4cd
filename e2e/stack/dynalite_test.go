package stack_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/smartscale/smartscale/e2e/stack"
)

func createTable(ctx context.Context, t *testing.T, db *dynamodb.Client, name string) {
	t.Helper()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	// As with DynamoDB, a new table takes writes once ACTIVE.
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("table %s not active: %v", name, err)
	}
}

// putLock is the lock write of the state model: succeeds only if the item
// does not exist.
func putLock(ctx context.Context, db *dynamodb.Client, table, owner string) error {
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"pk":    &types.AttributeValueMemberS{Value: "lock#workers"},
			"owner": &types.AttributeValueMemberS{Value: owner},
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	return err
}

func TestDynaliteConditionalWriteAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := stack.Start(t, stack.Options{Dynalite: true, DynalitePersist: true})
	db := s.DynamoClient()
	createTable(ctx, t, db, "state")

	if err := putLock(ctx, db, "state", "a"); err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	err := putLock(ctx, db, "state", "b")
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional put: want ConditionalCheckFailedException, got %v", err)
	}

	pid := s.Process(stack.Dynalite).PID()
	if err := s.StopDynalite(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err == nil {
		t.Fatal("ListTables succeeded with dynalite stopped")
	}
	if processAlive(pid) {
		t.Fatalf("dynalite pid %d still alive after StopDynalite", pid)
	}
	if err := s.StartDynalite(ctx); err != nil {
		t.Fatal(err)
	}
	// Same endpoint, and DynalitePersist kept the item.
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String("state"),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "lock#workers"}},
	})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	owner, _ := out.Item["owner"].(*types.AttributeValueMemberS)
	if owner == nil || owner.Value != "a" {
		t.Fatalf("after restart: item = %v, want owner a", out.Item)
	}

	pids := s.PIDs()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, pids)
}

// A client killed in the middle of a request (a SIGKILLed `smartscale
// serve`) must not take dynalite down with it.
func TestDynaliteSurvivesAClientGoneMidRequest(t *testing.T) {
	s := stack.Start(t, stack.Options{Dynalite: true})
	ctx := context.Background()
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.DynamoEndpoint, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		// Headers promise a body that never comes in full.
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"+
			"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{\"Li")
		time.Sleep(50 * time.Millisecond)
		conn.Close()
	}
	time.Sleep(200 * time.Millisecond) // dynalite handles the close
	if p := s.Process(stack.Dynalite); p.Exited() {
		t.Fatalf("dynalite exited after a client went away:\n%s", p.LogTail(20))
	}
	if _, err := s.DynamoClient().ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("dynalite no longer answers: %v", err)
	}
}
