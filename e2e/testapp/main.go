// Command testapp is the tiny server the e2e tests run in a container built
// locally (FROM scratch): it answers HTTP on the port given by the driver and
// prints to stdout, so tests can check ports, logs, exec and env.
//
//	testapp serve            serve on $ROCKETMQ_LISTEN_PORT, else $PORT, else 8080
//	testapp env NAME         print the value of env var NAME (for alloc exec)
//	testapp cat PATH         print a file (for alloc exec)
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve | env NAME | cat PATH")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve()
	case "env":
		if len(os.Args) != 3 {
			os.Exit(2)
		}
		v, ok := os.LookupEnv(os.Args[2])
		if !ok {
			os.Exit(1)
		}
		fmt.Println(v)
	case "cat":
		if len(os.Args) != 3 {
			os.Exit(2)
		}
		b, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	default:
		os.Exit(2)
	}
}

func serve() {
	port := os.Getenv("ROCKETMQ_LISTEN_PORT")
	if port == "" {
		port = os.Getenv("PORT")
	}
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "testapp ok advertised=%s:%s\n", os.Getenv("ROCKETMQ_ADVERTISED_IP"), os.Getenv("ROCKETMQ_ADVERTISED_PORT"))
	})
	fmt.Printf("testapp listening on :%s\n", port)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Println("testapp stopping")
		os.Exit(0)
	}()
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
