{
  "targets": [
    {
      "target_name": "edgeplane",
      "sources": [
        "src/addon.cc",
        "src/affinity_table.c",
        "src/checksum.c",
        "src/dataplane.c",
        "src/drop_reason.c",
        "src/encap.c",
        "src/encap6.c",
        "src/flow_table.c",
        "src/hold.c",
        "src/interest.c",
        "src/local_reply.c",
        "src/nat.c",
        "src/neighbor.c",
        "src/neighbor6.c",
        "src/packet6.c",
        "src/parse.c",
        "src/qos.c",
        "src/sd_notify.c",
        "src/service.c",
        "src/table_memory.c",
        "src/wildcard.c",
        "src/wildcard6.c",
        "src/worker.c"
      ],
      "include_dirs": [
        "include",
        "src",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "ALLOW_EXPERIMENTAL_API"],
      "cflags": ["<!@(pkg-config --cflags libdpdk)", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs libdpdk)"]
    }
  ]
}
