"""The strategy task evaluates only the symbols with news (mm.strategies.runner.Changes): a
new book of one symbol does not re-run the others, and a book that arrives while the loop is
busy is evaluated at the next decision. The market maker's decide keeps to the symbols it is
given."""

from __future__ import annotations

from mm.book import Book, BookBus
from mm.model import Level
from mm.strategies.runner import Changes

SYMBOLS = ("BTC", "ETH", "SOL")


def book(coin: str, mid: float, received_ms: int = 0) -> Book:
    return Book(coin, 0, (Level(mid - 1, 1.0, 1),), (Level(mid + 1, 1.0, 1),), received_ms)


def publish_all(bus: BookBus) -> None:
    for i, coin in enumerate(SYMBOLS):
        bus.publish(book(coin, 100.0 + i))


def test_the_first_decision_evaluates_every_symbol_then_only_those_with_news() -> None:
    bus, changes = BookBus(), Changes(SYMBOLS)
    publish_all(bus)
    books = changes.new_books(bus.latest)
    assert [b.coin for b in books] == list(SYMBOLS)
    assert changes.take(books, set()) == (None, frozenset())  # everything, at start
    bus.publish(book("ETH", 200.0))
    books = changes.new_books(bus.latest)
    assert [b.coin for b in books] == ["ETH"]
    changed, requote = changes.take(books, set())
    assert changed == ("ETH",)  # BTC and SOL are not re-run
    assert requote == frozenset()


def test_nothing_is_missed_while_the_loop_is_busy() -> None:
    bus, changes = BookBus(), Changes(SYMBOLS)
    publish_all(bus)
    changes.take(changes.new_books(bus.latest), set())
    bus.publish(book("SOL", 150.0))
    books = changes.new_books(bus.latest)
    # While the strategy decides on SOL, books of BTC (twice) and SOL again arrive.
    bus.publish(book("BTC", 90.0))
    bus.publish(book("BTC", 91.0))
    bus.publish(book("SOL", 151.0))
    assert changes.take(books, set())[0] == ("SOL",)
    books = changes.new_books(bus.latest)
    assert [(b.coin, b.mid) for b in books] == [("BTC", 91.0), ("SOL", 151.0)]
    assert changes.take(books, set())[0] == ("BTC", "SOL")
    assert changes.new_books(bus.latest) == []  # and nothing is told twice
    assert changes.take([], set())[0] == ()


def test_trades_fills_and_the_executor_add_their_symbols_in_symbol_order() -> None:
    bus, changes = BookBus(), Changes(SYMBOLS)
    publish_all(bus)
    changes.take(changes.new_books(bus.latest), set())
    changes.touch("SOL")  # a fill
    changes.request("BTC")  # the executor's plan was too old
    changes.touch("DOGE")  # not a symbol of the strategy
    changed, requote = changes.take([], set())
    assert changed == ("BTC", "SOL")
    assert requote == {"BTC"}
    assert changes.take([], set()) == ((), frozenset())  # taken once


def test_a_symbol_waiting_for_the_budget_is_quoted_afresh_on_each_book_of_it() -> None:
    bus, changes = BookBus(), Changes(SYMBOLS)
    publish_all(bus)
    changes.take(changes.new_books(bus.latest), set())
    bus.publish(book("ETH", 201.0))
    bus.publish(book("BTC", 99.0))
    changed, requote = changes.take(changes.new_books(bus.latest), {"ETH", "SOL"})
    assert changed == ("BTC", "ETH")
    assert requote == {"ETH"}  # SOL waits too, but its book did not move


def test_a_change_for_every_symbol_evaluates_them_all_once() -> None:
    bus, changes = BookBus(), Changes(SYMBOLS)
    publish_all(bus)
    changes.take(changes.new_books(bus.latest), set())
    changes.everything()  # the permission board changed
    assert changes.take([], set())[0] is None
    assert changes.take([], set())[0] == ()
