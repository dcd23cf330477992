package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/synchrosync/synchro/client"
)

// A complete program that syncs a table: the body of its main (see the
// package documentation for the program itself).
func Example() {
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{
		ServerURL:  "https://todo.example.com", // where synchrohttp serves /sync/
		Path:       "todo.db",
		Token:      func(context.Context) (string, error) { return os.Getenv("TODO_TOKEN"), nil },
		AppVersion: "1.0.0",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Sync(ctx); err != nil { // creates the tables, takes the snapshot
		log.Fatal(err)
	}
	// Plain SQL on the synced table: the triggers queue the change.
	if _, err := c.DB().ExecContext(ctx, `UPDATE items SET done = 1 WHERE title = 'milk'`); err != nil {
		log.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil { // pushes it, pulls the others' changes
		log.Fatal(err)
	}
	var open int
	if err := c.DB().QueryRowContext(ctx, `SELECT count(*) FROM items WHERE done = 0`).Scan(&open); err != nil {
		log.Fatal(err)
	}
	fmt.Println(open, "items left") // a long-running app runs go c.Run(ctx) instead of Syncs
}

// Run keeps the file in sync in the background until its context ends;
// Status and the events tell what it does.
func ExampleClient_Run() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	c, err := client.Open(ctx, client.Config{
		ServerURL: "https://todo.example.com",
		Path:      "todo.db",
		OnEvent: func(ev client.Event) {
			switch ev.Kind {
			case client.EventReceived:
				fmt.Println("refresh the views of", ev.Tables)
			case client.EventConflict, client.EventRejected:
				fmt.Println("tell the user:", ev.Rejection.Table, ev.Rejection.ID, ev.Rejection.Reason)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	go func() { _ = c.Run(ctx) }()
	// ... the application reads and writes c.DB() ...
}

// Rejections keep every local change the server did not take, with the
// row that was sent, until the application deals with them.
func ExampleClient_Rejections() {
	ctx := context.Background()
	c, err := client.Open(ctx, client.Config{ServerURL: "https://todo.example.com", Path: "todo.db"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rejected, err := c.Rejections(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rejected {
		fmt.Printf("%s of %s %s: %s %s (%s); sent %s\n", r.Operation, r.Table, r.ID, r.Status, r.Reason, r.Message, r.Data)
		if err := c.DeleteRejections(ctx, r.Seq); err != nil {
			log.Fatal(err)
		}
	}
}
