# Meridian: one static binary; every component is a subcommand.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/meridian ./cmd/meridian

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meridian /usr/local/bin/meridian
VOLUME /data
ENV MERIDIAN_DATA_DIR=/data
EXPOSE 7777/tcp 7778/udp 8080/tcp
ENTRYPOINT ["/usr/local/bin/meridian"]
CMD ["run", "--http-addr", "0.0.0.0:8080"]
