// Unit tests for the transitions Connection's state machine allows (server/connection.h).
#include <catch2/catch.hpp>

#include <set>
#include <utility>

#include "server/connection.h"

using spawnd::server::Connection;
using State = Connection::State;

TEST_CASE("connection state machine allows exactly the documented transitions", "[unit][connection]") {
  const std::set<std::pair<State, State>> allowed = {
      {State::Accepted, State::Idle},           {State::Finished, State::Idle},
      {State::Idle, State::ReadingHead},        {State::Idle, State::BufferingBody},
      {State::ReadingHead, State::BufferingBody}, {State::Idle, State::Responding},
      {State::ReadingHead, State::Responding},  {State::BufferingBody, State::Responding},
      {State::Idle, State::Sending},            {State::ReadingHead, State::Sending},
      {State::BufferingBody, State::Sending},   {State::Responding, State::Sending},
      {State::Sending, State::Finished},        {State::Sending, State::Lingering},
  };
  const State all[] = {State::Accepted,   State::Idle,    State::ReadingHead, State::BufferingBody, State::Responding,
                       State::Sending,    State::Finished, State::Lingering,  State::Closed};
  for (State from : all) {
    for (State to : all) {
      CAPTURE(static_cast<int>(from), static_cast<int>(to));
      const bool expected = allowed.count({from, to}) > 0 || (to == State::Closed && from != State::Closed);
      CHECK(Connection::is_transition_allowed(from, to) == expected);
    }
  }
}
