# Builds librdkafka's test-runner from test.c and the framework files plus ONLY the selected test
# sources (the full suite is ~190 files); the other tests' main_NNNN_* functions come from a
# generated stubs file (they fail if ever called, and run.sh never selects them).
# Used by run.sh:
#   make -f librdkafka-tests.mk SRC=<librdkafka copy> INC=<cmake build>/generated/dummy \
#        LIB=<install>/lib OUT=<dir> TEST_SRCS="0103-transactions.c ..." STUBS=<stubs.c>
T       := $(SRC)/tests
FW      := test.c testcpp.cpp rusage.c sockem.c sockem_ctrl.c
OBJS    := $(addprefix $(OUT)/,$(addsuffix .o,$(basename $(FW) $(TEST_SRCS)))) $(OUT)/stubs.o
# rapidjson (rapidjson-dev) is what 0098 needs; librdkafka's CMake build never defines it.
CPPFLAGS := -I$(SRC)/src -I$(SRC)/src-cpp -I$(INC) -DWITH_RAPIDJSON=1
CFLAGS   := -g -O1 -pthread -w
CXXFLAGS := -g -O1 -pthread -w -std=c++11

$(OUT)/test-runner: $(OBJS)
	$(CXX) -o $@ $^ -L$(LIB) -Wl,-rpath,$(LIB) -lrdkafka++ -lrdkafka -pthread -lm -ldl

$(OUT)/%.o: $(T)/%.c | $(OUT)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(OUT)/%.o: $(T)/%.cpp | $(OUT)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(OUT)/stubs.o: $(STUBS) | $(OUT)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OUT):
	mkdir -p $@
